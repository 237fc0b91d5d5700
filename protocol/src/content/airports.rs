//! The IATA airport codes messages accept, from `protocol/data/iata_airports.tsv` (the
//! `airportsdata` package, MIT; provenance in the file's header), parsed once on first use.

use std::sync::OnceLock;

/// The vendored list.
const TSV: &str = include_str!("../../data/iata_airports.tsv");

/// `(code, name, country)`, sorted by code.
pub(super) fn airports() -> &'static [(&'static str, &'static str, &'static str)] {
    static TABLE: OnceLock<Vec<(&'static str, &'static str, &'static str)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        TSV.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let mut f = l.split('\t');
                Some((f.next()?, f.next()?, f.next()?))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_list_is_sorted_well_formed_and_complete() {
        let t = airports();
        assert!(t.len() > 7_000, "{}", t.len());
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "sorted for the binary search");
        assert!(t.iter().all(|(c, n, k)| {
            c.len() == 3
                && c.bytes().all(|b| b.is_ascii_uppercase())
                && !n.is_empty()
                && k.parse::<super::super::Country>().is_ok()
        }));
        let lines = TSV.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(lines, t.len(), "every line is an airport");
    }
}
