//! Field-by-field validation of content, with errors that name the field's path.

use super::kinds::*;
use super::{Body, ContentError, PersonalData};
use crate::limits::LIMITS;

type R = Result<(), ContentError>;

/// A field path, formatted only when an error is reported (validation runs on every message
/// opened, so the success path must not allocate).
#[derive(Clone, Copy)]
enum F<'a> {
    Root(&'a str),
    Field(&'a F<'a>, &'a str),
    Index(&'a F<'a>, usize),
}

impl F<'_> {
    fn render(&self) -> String {
        match self {
            F::Root(s) => (*s).to_owned(),
            F::Field(p, s) => format!("{}.{s}", p.render()),
            F::Index(p, i) => format!("{}[{i}]", p.render()),
        }
    }
}

fn fail(field: F<'_>, problem: impl Into<String>) -> R {
    Err(ContentError::Invalid { field: field.render(), problem: problem.into() })
}

/// A required single-line text field of at most `max_short_text_len` bytes.
fn short(field: F<'_>, s: &str) -> R {
    text_with(field, s, LIMITS.max_short_text_len, false)
}

/// A required free-text field (newlines and tabs allowed) of at most `max_text_len` bytes.
fn long(field: F<'_>, s: &str) -> R {
    text_with(field, s, LIMITS.max_text_len, true)
}

fn text_with(field: F<'_>, s: &str, max: usize, multiline: bool) -> R {
    if s.trim().is_empty() {
        return fail(field, "must not be empty");
    }
    if s.len() > max {
        return fail(field, format!("is {} bytes, over the limit of {max}", s.len()));
    }
    // Control characters (Unicode Cc) are C0, DEL and C1; in UTF-8 the first two are single
    // bytes and C1 is 0xC2 0x80..=0x9F, so a byte scan finds them without decoding characters.
    let b = s.as_bytes();
    let bad = b.iter().enumerate().any(|(i, &c)| {
        (c < 0x20 && !(multiline && (c == b'\n' || c == b'\t')))
            || c == 0x7f
            || (c == 0xc2 && b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
    });
    if bad {
        let c = s.chars().find(|c| c.is_control() && !(multiline && (*c == '\n' || *c == '\t')));
        return fail(field, format!("contains the control character {:?}", c.unwrap_or('?')));
    }
    Ok(())
}

fn opt(field: F<'_>, s: &Option<String>, check: fn(F<'_>, &str) -> R) -> R {
    s.as_deref().map_or(Ok(()), |s| check(field, s))
}

fn list<T>(field: F<'_>, items: &[T], max: usize, required: bool) -> R {
    if required && items.is_empty() {
        return fail(field, "must list at least one item");
    }
    if items.len() > max {
        return fail(field, format!("has {} items, over the limit of {max}", items.len()));
    }
    Ok(())
}

fn taxon(field: F<'_>, t: &Taxon) -> R {
    opt(F::Field(&field, "common"), &t.common, short)?;
    let f = F::Field(&field, "scientific");
    short(f, &t.scientific)?;
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
            f,
            format!(
                "{:?} is not a scientific name (Genus, Genus species, Genus species subspecies or Genus spp.)",
                t.scientific
            ),
        );
    }
    Ok(())
}

fn taxa(field: F<'_>, ts: &[Taxon], required: bool) -> R {
    list(field, ts, LIMITS.max_list_len, required)?;
    ts.iter().enumerate().try_for_each(|(i, t)| taxon(F::Index(&field, i), t))
}

fn route(field: F<'_>, r: &Route) -> R {
    list(F::Field(&field, "transit"), &r.transit, LIMITS.max_list_len, false)?;
    let points = F::Field(&field, "points");
    list(points, &r.points, LIMITS.max_list_len, false)?;
    for (i, p) in r.points.iter().enumerate() {
        if let RouteLocation::Region(name) = &p.at {
            short(F::Field(&F::Index(&points, i), "at"), name)?;
        }
    }
    // Points go origin(s), transit, departure, destination; the country fields agree with them.
    let rank = |role: RouteRole| match role {
        RouteRole::Origin => 0,
        RouteRole::Transit => 1,
        RouteRole::Departure => 2,
        RouteRole::Destination => 3,
    };
    if let Some(i) = r.points.windows(2).position(|w| rank(w[0].role) > rank(w[1].role)) {
        return fail(F::Index(&points, i + 1), "is out of order: origins, transits, departure, destination");
    }
    for (name, role, country) in [
        ("origin", RouteRole::Origin, r.origin),
        ("departure", RouteRole::Departure, r.departure),
        ("destination", RouteRole::Destination, r.destination),
    ] {
        let known: Vec<super::Country> =
            r.points.iter().filter(|p| p.role == role).filter_map(|p| p.at.country()).collect();
        if let Some(c) = country {
            if !known.is_empty() && !known.contains(&c) {
                return fail(
                    F::Field(&field, name),
                    format!("is {c}, but the route's {name} points are elsewhere"),
                );
            }
        }
    }
    Ok(())
}

fn place(field: F<'_>, p: &Place) -> R {
    short(F::Field(&field, "name"), &p.name)?;
    if let Some(l) = &p.locode {
        if l.country() != p.country {
            return fail(F::Field(&field, "locode"), format!("{l} is not in {}", p.country));
        }
    }
    if let Some(a) = &p.iata {
        if a.country() != p.country.as_str() {
            return fail(F::Field(&field, "iata"), format!("{a} ({}) is not in {}", a.name(), p.country));
        }
    }
    if let Some(c) = &p.coordinates {
        if let Err(e) = c.check() {
            return fail(F::Field(&field, "coordinates"), e.to_string());
        }
    }
    Ok(())
}

fn shipment(field: F<'_>, refs: &[super::transport::TransportRef]) -> R {
    list(field, refs, LIMITS.max_list_len, false)?;
    for (i, r) in refs.iter().enumerate() {
        let f = F::Index(&field, i);
        if let Err(e) = r.check() {
            return fail(f, e.to_string());
        }
        match r {
            super::transport::TransportRef::Vehicle(v) => short(F::Field(&f, "plate"), &v.plate)?,
            super::transport::TransportRef::Carrier(c) => short(F::Field(&f, "name"), &c.name)?,
            _ => {}
        }
    }
    Ok(())
}

fn positive(field: F<'_>, a: &super::codes::Amount) -> R {
    if a.as_str() == "0" { fail(field, "must be greater than zero") } else { Ok(()) }
}

fn attachments(field: F<'_>, a: &[Attachment]) -> R {
    list(field, a, LIMITS.max_attachments, false)?;
    let mut total = 0usize;
    for (i, att) in a.iter().enumerate() {
        let f = F::Index(&field, i);
        opt(F::Field(&f, "name"), &att.name, short)?;
        if att.data.is_empty() {
            return fail(F::Field(&f, "data"), "must not be empty");
        }
        if att.data.len() > LIMITS.max_attachment_len {
            return fail(
                F::Field(&f, "data"),
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

fn texts(field: F<'_>, items: &[String]) -> R {
    list(field, items, LIMITS.max_list_len, false)?;
    items.iter().enumerate().try_for_each(|(i, s)| short(F::Index(&field, i), s))
}

/// What only content being written must meet: every HS code in the HS 2022 nomenclature.
/// Content received is opened without it, so that a code of another edition (or one an older
/// build accepted) still reads.
pub(super) fn authored(b: &Body) -> R {
    authored_content(F::Root(b.content.kind()), &b.content)
}

fn authored_content(f: F<'_>, c: &Content) -> R {
    let known = |field: F<'_>, h: &super::HsCode| match h.check_nomenclature() {
        Ok(()) => Ok(()),
        Err(e) => fail(field, e.to_string()),
    };
    match c {
        Content::Warning(w) => {
            let hs = F::Field(&f, "hs");
            w.hs_codes.iter().enumerate().try_for_each(|(i, h)| known(F::Index(&hs, i), h))
        }
        Content::SeizureReport(r) => {
            let items = F::Field(&f, "items");
            for (i, item) in r.items.iter().enumerate() {
                let line = F::Index(&items, i);
                if let Some(h) = &item.hs_actual {
                    known(F::Field(&line, "hs_actual"), h)?;
                }
                if let Some(h) = &item.hs_declared {
                    known(F::Field(&line, "hs_declared"), h)?;
                }
            }
            Ok(())
        }
        Content::Correction(c) => authored_content(F::Field(&f, "corrected"), &c.corrected),
        _ => Ok(()),
    }
}

pub(super) fn body(b: &Body) -> R {
    content(F::Root(b.content.kind()), &b.content, 0)?;
    let root = F::Root("body");
    list(F::Field(&root, "handling"), &b.handling, LIMITS.max_list_len, false)?;
    if b.handling.windows(2).any(|w| w[0] >= w[1]) {
        return fail(F::Field(&root, "handling"), "lists each code once, in order");
    }
    if b.handling.contains(&super::HandlingCode::H0) && b.handling.len() > 1 {
        return fail(F::Field(&root, "handling"), "H0 (no restriction) goes alone");
    }
    match (&b.handling_note, b.handling.contains(&super::HandlingCode::H3)) {
        (Some(n), true) => short(F::Field(&root, "handling_note"), n)?,
        (None, true) => return fail(F::Field(&root, "handling_note"), "H3 says which restrictions apply"),
        (Some(_), false) => return fail(F::Field(&root, "handling_note"), "is for H3's restrictions only"),
        (None, false) => {}
    }
    texts(F::Field(&root, "addressees"), &b.addressees)?;
    let statements = F::Field(&root, "statements");
    list(statements, &b.statements, LIMITS.max_list_len, false)?;
    for (i, st) in b.statements.iter().enumerate() {
        let f = F::Index(&statements, i);
        long(F::Field(&f, "text"), &st.text)?;
    }
    Ok(())
}

fn content(f: F<'_>, c: &Content, depth: u8) -> R {
    match c {
        Content::Warning(w) => warning(f, w),
        Content::Feedback(fb) => {
            if let Some(p) = &fb.place {
                place(F::Field(&f, "place"), p)?;
            }
            shipment(F::Field(&f, "shipment"), &fb.shipment)?;
            long(F::Field(&f, "details"), &fb.details)?;
            if fb.outcome == Outcome::Seized && fb.seizure.is_none() {
                return fail(F::Field(&f, "seizure"), "an outcome of seized must link the SeizureReport");
            }
            Ok(())
        }
        Content::SeizureReport(s) => seizure(f, s),
        Content::Bulletin(b) => {
            short(F::Field(&f, "title"), &b.title)?;
            long(F::Field(&f, "summary"), &b.summary)?;
            long(F::Field(&f, "body"), &b.body)?;
            taxa(F::Field(&f, "species"), &b.species, false)?;
            list(F::Field(&f, "countries"), &b.countries, LIMITS.max_list_len, false)?;
            opt(F::Field(&f, "reference"), &b.reference, short)?;
            attachments(F::Field(&f, "attachments"), &b.attachments)
        }
        Content::Forward(fw) => {
            opt(F::Field(&f, "comment"), &fw.comment, long)?;
            nested(F::Field(&f, "content"), &fw.content, depth)?;
            forward(f, fw)
        }
        Content::Retraction(r) => long(F::Field(&f, "reason"), &r.reason),
        Content::Correction(c) => {
            long(F::Field(&f, "reason"), &c.reason)?;
            nested(F::Field(&f, "corrected"), &c.corrected, depth)
        }
        Content::Receipt(r) => opt(F::Field(&f, "note"), &r.note, short),
        Content::ChannelRequest(r) => short(F::Field(&f, "note"), &r.note),
        Content::CaseFollowUp(c) => {
            opt(F::Field(&f, "court"), &c.court, short)?;
            opt(F::Field(&f, "case_number"), &c.case_number, short)?;
            opt(F::Field(&f, "details"), &c.details, long)?;
            texts(F::Field(&f, "charges"), &c.charges)?;
            list(F::Field(&f, "disposal"), &c.disposal, LIMITS.max_list_len, false)?;
            list(F::Field(&f, "penalties"), &c.penalties, LIMITS.max_list_len, false)?;
            for (i, p) in c.penalties.iter().enumerate() {
                let pf = F::Field(&f, "penalties");
                let at = F::Index(&pf, i);
                match (p.kind, &p.amount, p.months) {
                    (PenaltyKind::Fine, None, _) => return fail(at, "a fine names its amount"),
                    (PenaltyKind::Imprisonment | PenaltyKind::SuspendedSentence, _, None) => {
                        return fail(at, "a sentence names its length in months");
                    }
                    (_, Some(m), _) => positive(F::Field(&at, "amount"), &m.amount)?,
                    _ => {}
                }
            }
            if c.outcome == CaseOutcome::Convicted && c.penalties.is_empty() {
                return fail(F::Field(&f, "penalties"), "a conviction names its penalties");
            }
            Ok(())
        }
        Content::ForensicSample(x) => {
            short(F::Field(&f, "laboratory"), &x.laboratory)?;
            opt(F::Field(&f, "result"), &x.result, long)?;
            list(F::Field(&f, "origin"), &x.origin, LIMITS.max_list_len, false)?;
            if x.samples == 0 {
                return fail(F::Field(&f, "samples"), "must be at least one");
            }
            if x.line == Some(0) {
                return fail(F::Field(&f, "line"), "lines are counted from 1");
            }
            match (&x.completed, &x.result) {
                (Some(done), _) if *done < x.requested => {
                    fail(F::Field(&f, "completed"), "is before the analysis was requested")
                }
                (Some(_), None) => fail(F::Field(&f, "result"), "a completed analysis states its result"),
                _ => Ok(()),
            }
        }
    }
}

/// A forward carries the original's signed envelope, agreeing with what it says of it; RED and
/// AMBER+STRICT never leave their audience, AMBER only with its originator's consent.
fn forward(f: F<'_>, fw: &Forward) -> R {
    use super::Tlp;
    let ef = F::Field(&f, "envelope");
    if fw.envelope.is_empty() {
        return fail(ef, "must carry the original envelope as signed");
    }
    if fw.envelope.len() > LIMITS.max_envelope_len {
        return fail(
            ef,
            format!("is {} bytes, over the limit of {}", fw.envelope.len(), LIMITS.max_envelope_len),
        );
    }
    let e = match crate::envelope::Envelope::verify(&fw.envelope) {
        Ok(e) => e,
        Err(err) => return fail(ef, format!("does not verify: {err}")),
    };
    if e.id() != fw.original {
        return fail(ef, format!("is message {}, not the original {}", e.id().short(), fw.original.short()));
    }
    let h = e.header();
    if h.author != fw.author {
        return fail(F::Field(&f, "author"), format!("the original was signed by {}", h.author.short()));
    }
    if h.marking != fw.marking {
        return fail(F::Field(&f, "marking"), format!("the original is marked {}", h.marking));
    }
    match (fw.marking, &fw.consent) {
        (Tlp::Red | Tlp::AmberStrict, _) => {
            fail(F::Field(&f, "marking"), format!("a {} message is never forwarded", fw.marking))
        }
        (Tlp::Amber, None) => fail(
            F::Field(&f, "consent"),
            "a TLP:AMBER message leaves its audience only with its originator's consent",
        ),
        (_, Some(c)) if c.by != fw.author => fail(F::Field(&f, "consent"), "must be the original author's"),
        _ => Ok(()),
    }
}

/// Content inside a Forward or Correction: one level only, and only substantive kinds.
fn nested(f: F<'_>, c: &Content, depth: u8) -> R {
    if depth > 0
        || matches!(
            c,
            Content::Forward(_)
                | Content::Correction(_)
                | Content::Retraction(_)
                | Content::Receipt(_)
                | Content::ChannelRequest(_)
                | Content::CaseFollowUp(_)
                | Content::ForensicSample(_)
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

fn warning(f: F<'_>, w: &Warning) -> R {
    short(F::Field(&f, "title"), &w.title)?;
    short(F::Field(&f, "commodity"), &w.commodity)?;
    long(F::Field(&f, "summary"), &w.summary)?;
    long(F::Field(&f, "action"), &w.action)?;
    taxa(F::Field(&f, "species"), &w.species, false)?;
    list(F::Field(&f, "hs"), &w.hs_codes, LIMITS.max_list_len, false)?;
    route(F::Field(&f, "route"), &w.route)?;
    list(F::Field(&f, "conveyance"), &w.conveyance, LIMITS.max_list_len, false)?;
    texts(F::Field(&f, "indicators"), &w.indicators)?;
    opt(F::Field(&f, "concealment"), &w.concealment, long)?;
    shipment(F::Field(&f, "shipment"), &w.shipment)?;
    if let Some(a) = &w.arrival {
        let af = F::Field(&f, "arrival");
        place(F::Field(&af, "place"), &a.place)?;
    }
    attachments(F::Field(&f, "attachments"), &w.attachments)
}

fn seizure(f: F<'_>, s: &SeizureReport) -> R {
    place(F::Field(&f, "place"), &s.place)?;
    list(F::Field(&f, "items"), &s.items, LIMITS.max_list_len, true)?;
    for (i, item) in s.items.iter().enumerate() {
        let items = F::Field(&f, "items");
        let at = F::Index(&items, i);
        taxon(F::Field(&at, "taxon"), &item.taxon)?;
        match (&item.quantity, item.amount_unknown) {
            (Some(q), false) => positive(F::Field(&at, "quantity"), q)?,
            (None, true) => {}
            (Some(_), true) => {
                return fail(
                    F::Field(&at, "amount_unknown"),
                    "a line with a quantity is not of unknown amount",
                );
            }
            (None, false) => {
                return fail(F::Field(&at, "quantity"), "give the quantity, or amount_unknown: true");
            }
        }
        let measures = F::Field(&at, "measures");
        list(measures, &item.measures, LIMITS.max_list_len, false)?;
        for (j, m) in item.measures.iter().enumerate() {
            let mf = F::Index(&measures, j);
            positive(F::Field(&mf, "amount"), &m.amount)?;
            if m.unit == item.unit {
                return fail(
                    F::Field(&mf, "unit"),
                    "is the line's own unit: a further measure is in another",
                );
            }
        }
        if (item.live.is_some() || item.dead.is_some()) && !item.term.as_str().eq("LIV") {
            return fail(F::Field(&at, "live"), "live and dead counts are for live specimens (term LIV)");
        }
        if let Some(iv) = &item.ivory {
            let ivf = F::Field(&at, "ivory");
            if !item.taxon.scientific.starts_with("Loxodonta")
                && !item.taxon.scientific.starts_with("Elephas")
            {
                return fail(ivf, "ivory pieces are for elephant ivory (Loxodonta, Elephas)");
            }
            for (name, a) in [("raw_kg", &iv.raw_kg), ("worked_kg", &iv.worked_kg)] {
                if let Some(a) = a {
                    positive(F::Field(&ivf, name), a)?;
                }
            }
        }
    }
    shipment(F::Field(&f, "shipment"), &s.shipment)?;
    opt(F::Field(&f, "agency"), &s.agency, short)?;
    opt(F::Field(&f, "operation"), &s.operation, short)?;
    opt(F::Field(&f, "case_reference"), &s.case_reference, short)?;
    opt(F::Field(&f, "declared_goods"), &s.declared_goods, short)?;
    list(F::Field(&f, "related"), &s.related, LIMITS.max_list_len, false)?;
    list(F::Field(&f, "nationalities"), &s.nationalities, LIMITS.max_list_len, false)?;
    if s.packages == Some(0) {
        return fail(F::Field(&f, "packages"), "must be at least one when given");
    }
    if let Some(v) = &s.indicators.value {
        positive(F::Field(&F::Field(&f, "indicators"), "value"), &v.amount)?;
    }
    route(F::Field(&f, "route"), &s.route)?;
    list(F::Field(&f, "detection"), &s.detection, LIMITS.max_list_len, false)?;
    opt(F::Field(&f, "narrative"), &s.narrative, long)?;
    opt(F::Field(&f, "concealment"), &s.concealment, long)?;
    attachments(F::Field(&f, "attachments"), &s.attachments)
}

pub(super) fn personal(p: &PersonalData) -> R {
    let root = F::Root("personal");
    let (persons, companies) = (F::Field(&root, "persons"), F::Field(&root, "companies"));
    list(persons, &p.persons, LIMITS.max_list_len, false)?;
    list(companies, &p.companies, LIMITS.max_list_len, false)?;
    list(F::Field(&root, "permits"), &p.permits, LIMITS.max_list_len, false)?;
    for (i, person) in p.persons.iter().enumerate() {
        let f = F::Index(&persons, i);
        short(F::Field(&f, "name"), &person.name)?;
        opt(F::Field(&f, "role"), &person.role, short)?;
        opt(F::Field(&f, "document"), &person.document, short)?;
    }
    for (i, c) in p.companies.iter().enumerate() {
        let f = F::Index(&companies, i);
        short(F::Field(&f, "name"), &c.name)?;
        opt(F::Field(&f, "role"), &c.role, short)?;
        opt(F::Field(&f, "registration"), &c.registration, short)?;
    }
    opt(F::Field(&root, "legal_basis"), &p.legal_basis, short)?;
    if p.persons.is_empty() && p.companies.is_empty() && p.permits.is_empty() {
        return fail(root, "an empty personal-data section must be left out");
    }
    Ok(())
}
