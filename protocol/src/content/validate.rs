//! Field-by-field validation of content, with errors that name the field's path.

use super::kinds::*;
use super::{Body, ContentError, PersonalData};
use crate::limits::LIMITS;

type R = Result<(), ContentError>;

fn fail(field: &str, problem: impl Into<String>) -> R {
    Err(ContentError::Invalid { field: field.to_owned(), problem: problem.into() })
}

/// A required single-line text field of at most `max_short_text_len` bytes.
fn short(field: &str, s: &str) -> R {
    text_with(field, s, LIMITS.max_short_text_len, false)
}

/// A required free-text field (newlines and tabs allowed) of at most `max_text_len` bytes.
fn long(field: &str, s: &str) -> R {
    text_with(field, s, LIMITS.max_text_len, true)
}

fn text_with(field: &str, s: &str, max: usize, multiline: bool) -> R {
    if s.trim().is_empty() {
        return fail(field, "must not be empty");
    }
    if s.len() > max {
        return fail(field, format!("is {} bytes, over the limit of {max}", s.len()));
    }
    let allowed = |c: char| !c.is_control() || (multiline && (c == '\n' || c == '\t'));
    if let Some(c) = s.chars().find(|c| !allowed(*c)) {
        return fail(field, format!("contains the control character {c:?}"));
    }
    Ok(())
}

fn opt(field: &str, s: &Option<String>, check: fn(&str, &str) -> R) -> R {
    s.as_deref().map_or(Ok(()), |s| check(field, s))
}

fn list<T>(field: &str, items: &[T], max: usize, required: bool) -> R {
    if required && items.is_empty() {
        return fail(field, "must list at least one item");
    }
    if items.len() > max {
        return fail(field, format!("has {} items, over the limit of {max}", items.len()));
    }
    Ok(())
}

fn taxon(field: &str, t: &Taxon) -> R {
    opt(&format!("{field}.common"), &t.common, short)?;
    let f = format!("{field}.scientific");
    short(&f, &t.scientific)?;
    let words: Vec<&str> = t.scientific.split(' ').collect();
    let genus_ok = words[0].len() >= 2
        && words[0].chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && words[0].chars().skip(1).all(|c| c.is_ascii_lowercase());
    let rest_ok = words.len() <= 3
        && words[1..].iter().enumerate().all(|(i, w)| {
            (i == 0 && words.len() == 2 && matches!(*w, "spp." | "sp." | "hybrid"))
                || (!w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        });
    if !genus_ok || !rest_ok {
        return fail(
            &f,
            format!(
                "{:?} is not a scientific name (Genus, Genus species, Genus species subspecies or Genus spp.)",
                t.scientific
            ),
        );
    }
    Ok(())
}

fn taxa(field: &str, ts: &[Taxon], required: bool) -> R {
    list(field, ts, LIMITS.max_list_len, required)?;
    ts.iter().enumerate().try_for_each(|(i, t)| taxon(&format!("{field}[{i}]"), t))
}

fn route(field: &str, r: &Route) -> R {
    list(&format!("{field}.transit"), &r.transit, LIMITS.max_list_len, false)
}

fn place(field: &str, p: &Place) -> R {
    short(&format!("{field}.name"), &p.name)
}

fn attachments(field: &str, a: &[Attachment]) -> R {
    list(field, a, LIMITS.max_attachments, false)?;
    let mut total = 0usize;
    for (i, att) in a.iter().enumerate() {
        let f = format!("{field}[{i}]");
        opt(&format!("{f}.name"), &att.name, short)?;
        if att.data.is_empty() {
            return fail(&format!("{f}.data"), "must not be empty");
        }
        if att.data.len() > LIMITS.max_attachment_len {
            return fail(
                &format!("{f}.data"),
                format!("is {} bytes, over the limit of {}", att.data.len(), LIMITS.max_attachment_len),
            );
        }
        total += att.data.len();
    }
    if total > LIMITS.max_attachments_total {
        return fail(
            field,
            format!("total {total} bytes, over the limit of {}", LIMITS.max_attachments_total),
        );
    }
    Ok(())
}

fn texts(field: &str, items: &[String]) -> R {
    list(field, items, LIMITS.max_list_len, false)?;
    items.iter().enumerate().try_for_each(|(i, s)| short(&format!("{field}[{i}]"), s))
}

pub(super) fn body(b: &Body) -> R {
    content(b.content.kind(), &b.content, 0)
}

fn content(f: &str, c: &Content, depth: u8) -> R {
    match c {
        Content::Warning(w) => warning(f, w),
        Content::Feedback(fb) => {
            if let Some(p) = &fb.place {
                place(&format!("{f}.place"), p)?;
            }
            long(&format!("{f}.details"), &fb.details)?;
            if fb.outcome == Outcome::Seized && fb.seizure.is_none() {
                return fail(&format!("{f}.seizure"), "an outcome of seized must link the SeizureReport");
            }
            Ok(())
        }
        Content::SeizureReport(s) => seizure(f, s),
        Content::Bulletin(b) => {
            short(&format!("{f}.title"), &b.title)?;
            long(&format!("{f}.summary"), &b.summary)?;
            long(&format!("{f}.body"), &b.body)?;
            taxa(&format!("{f}.species"), &b.species, false)?;
            list(&format!("{f}.countries"), &b.countries, LIMITS.max_list_len, false)?;
            opt(&format!("{f}.reference"), &b.reference, short)?;
            attachments(&format!("{f}.attachments"), &b.attachments)
        }
        Content::Forward(fw) => {
            opt(&format!("{f}.comment"), &fw.comment, long)?;
            nested(&format!("{f}.content"), &fw.content, depth)
        }
        Content::Retraction(r) => long(&format!("{f}.reason"), &r.reason),
        Content::Correction(c) => {
            long(&format!("{f}.reason"), &c.reason)?;
            nested(&format!("{f}.corrected"), &c.corrected, depth)
        }
        Content::Receipt(r) => opt(&format!("{f}.note"), &r.note, short),
    }
}

/// Content inside a Forward or Correction: one level only, and only substantive kinds.
fn nested(f: &str, c: &Content, depth: u8) -> R {
    if depth > 0
        || matches!(
            c,
            Content::Forward(_) | Content::Correction(_) | Content::Retraction(_) | Content::Receipt(_)
        )
    {
        return fail(
            f,
            format!(
                "a {} cannot be nested here; only warnings, feedback, seizure reports and bulletins",
                c.kind()
            ),
        );
    }
    content(f, c, depth + 1)
}

fn warning(f: &str, w: &Warning) -> R {
    short(&format!("{f}.title"), &w.title)?;
    short(&format!("{f}.commodity"), &w.commodity)?;
    long(&format!("{f}.summary"), &w.summary)?;
    long(&format!("{f}.action"), &w.action)?;
    taxa(&format!("{f}.species"), &w.species, false)?;
    list(&format!("{f}.hs"), &w.hs_codes, LIMITS.max_list_len, false)?;
    route(&format!("{f}.route"), &w.route)?;
    list(&format!("{f}.conveyance"), &w.conveyance, LIMITS.max_list_len, false)?;
    texts(&format!("{f}.indicators"), &w.indicators)?;
    opt(&format!("{f}.concealment"), &w.concealment, long)?;
    attachments(&format!("{f}.attachments"), &w.attachments)
}

fn seizure(f: &str, s: &SeizureReport) -> R {
    place(&format!("{f}.place"), &s.place)?;
    list(&format!("{f}.items"), &s.items, LIMITS.max_list_len, true)?;
    for (i, item) in s.items.iter().enumerate() {
        taxon(&format!("{f}.items[{i}].taxon"), &item.taxon)?;
        if item.quantity.as_str() == "0" {
            return fail(&format!("{f}.items[{i}].quantity"), "must be greater than zero");
        }
    }
    route(&format!("{f}.route"), &s.route)?;
    list(&format!("{f}.detection"), &s.detection, LIMITS.max_list_len, false)?;
    opt(&format!("{f}.narrative"), &s.narrative, long)?;
    opt(&format!("{f}.concealment"), &s.concealment, long)?;
    attachments(&format!("{f}.attachments"), &s.attachments)
}

pub(super) fn personal(p: &PersonalData) -> R {
    list("personal.persons", &p.persons, LIMITS.max_list_len, false)?;
    list("personal.companies", &p.companies, LIMITS.max_list_len, false)?;
    list("personal.permits", &p.permits, LIMITS.max_list_len, false)?;
    for (i, person) in p.persons.iter().enumerate() {
        let f = format!("personal.persons[{i}]");
        short(&format!("{f}.name"), &person.name)?;
        opt(&format!("{f}.role"), &person.role, short)?;
        opt(&format!("{f}.document"), &person.document, short)?;
    }
    for (i, c) in p.companies.iter().enumerate() {
        let f = format!("personal.companies[{i}]");
        short(&format!("{f}.name"), &c.name)?;
        opt(&format!("{f}.role"), &c.role, short)?;
        opt(&format!("{f}.registration"), &c.registration, short)?;
    }
    if p.persons.is_empty() && p.companies.is_empty() && p.permits.is_empty() {
        return fail("personal", "an empty personal-data section must be left out");
    }
    Ok(())
}
