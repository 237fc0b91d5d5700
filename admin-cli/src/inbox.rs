//! `godwit inbox`: the list's filters, a message's content shown with what its codes mean, and
//! the export of seizure reports for an analyst's spreadsheet.

use std::io::Write;

use godwit_admin_api::InboxItem;
use godwit_protocol::Timestamp;
use godwit_protocol::content::{
    Amount, Body, Content, Country, HsCode, Place, Route, SeizedItem, SeizureReport, TransportRef, UnitCode,
};
use serde::Serialize;

use crate::node::{EXIT_REFUSED, fail};

/// Which inbox messages to list (all of them by default).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filter {
    /// Only messages of this channel (its name in the node's configuration, or its id).
    #[arg(long)]
    pub channel: Option<String>,
    /// Only messages of this kind: warning, feedback, seizure_report, bulletin, receipt, …
    #[arg(long)]
    pub kind: Option<String>,
    /// Only messages with this marking (red, amber+strict, amber, green, clear).
    #[arg(long)]
    pub marking: Option<String>,
    /// Only messages no operator marked read or actioned yet.
    #[arg(long)]
    pub unread: bool,
    /// Only messages created since a date (2026-11-30) or for a time (36h, 7d).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<u64>,
}

impl Filter {
    /// Whether `i` passes.
    pub fn matches(&self, i: &InboxItem) -> bool {
        let channel = self.channel.as_ref().is_none_or(|c| {
            let c = c.trim();
            i.channel.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(c))
                || i.channel_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(c))
        });
        let kind = self.kind.as_ref().is_none_or(|k| {
            let k = k.trim().to_ascii_lowercase().replace('-', "_");
            i.kind == k
                || (k == "seizure" && i.kind == "seizure_report")
                || (k == "alert" && i.kind == "warning")
        });
        let marking = self.marking.as_ref().is_none_or(|m| crate::node::tlp(m) == i.marking);
        let unread = !self.unread || i.status == "new";
        let since = self.since.is_none_or(|t| i.created_ms >= t);
        channel && kind && marking && unread && since
    }
}

/// `2026-11-30` (midnight UTC), `36h` or `7d` (before now) as ms since the epoch.
pub fn parse_since(s: &str) -> Result<u64, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    parse_since_at(s, now)
}

/// [`parse_since`] with the current time given, `now_ms` since the epoch.
fn parse_since_at(s: &str, now_ms: u64) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(d) = s.parse::<godwit_protocol::content::Date>() {
        let (y, m, d) = d.ymd();
        return Ok(days_from_civil(i64::from(y), u32::from(m), u32::from(d)).max(0) as u64 * 86_400_000);
    }
    let cut = s.char_indices().last().map_or(0, |(i, _)| i);
    let (n, unit) = s.split_at(cut);
    let hours = match unit {
        "h" => 1,
        "d" => 24,
        _ => return Err(format!("{s:?} is not a date (2026-11-30) or a time back from now (36h, 7d)")),
    };
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a number of hours (36h) or days (7d)"))?;
    Ok(now_ms.saturating_sub(n.saturating_mul(hours * 3_600_000)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(now as u64).to_string()[..10].to_string()
}

/// A time in ms since the epoch as `YYYY-MM-DD HH:MM` (UTC), from the protocol's RFC 3339 form;
/// `-` for 0 (never).
pub fn utc_minute(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let t = Timestamp(ms).to_string();
    format!("{} {}", &t[..10], &t[11..16])
}

fn country(c: &Country) -> String {
    format!("{} ({})", c.as_str(), c.name())
}

fn hs(h: &HsCode) -> String {
    let d = h.description();
    if d.is_empty() { h.as_str().to_string() } else { format!("{} ({d})", h.as_str()) }
}

fn route(r: &Route) -> String {
    use godwit_protocol::content::RouteLocation;
    if !r.points.is_empty() {
        return r
            .points
            .iter()
            .map(|p| {
                let at = match &p.at {
                    RouteLocation::Country(c) => country(c),
                    RouteLocation::Locode(l) => format!("UN/LOCODE {l} ({})", l.country().name()),
                    RouteLocation::Airport(a) => format!("{} ({}, {})", a.as_str(), a.name(), a.country()),
                    RouteLocation::Region(name) => format!("region {name}"),
                    RouteLocation::HighSeas => "the high seas".into(),
                    RouteLocation::Unknown => "unknown".into(),
                };
                format!("{} {at}", words(&p.role))
            })
            .collect::<Vec<_>>()
            .join(" → ");
    }
    let mut parts = Vec::new();
    if let Some(c) = &r.origin {
        parts.push(format!("origin {}", country(c)));
    }
    for c in &r.transit {
        parts.push(format!("transit {}", country(c)));
    }
    if let Some(c) = &r.departure {
        parts.push(format!("departure {}", country(c)));
    }
    if let Some(c) = &r.destination {
        parts.push(format!("destination {}", country(c)));
    }
    if parts.is_empty() { "unknown".into() } else { parts.join(" → ") }
}

fn place(p: &Place) -> String {
    let mut codes = Vec::new();
    if let Some(a) = &p.iata {
        codes.push(format!("IATA {a}"));
    }
    if let Some(l) = &p.locode {
        codes.push(format!("UN/LOCODE {l}"));
    }
    let codes = if codes.is_empty() { String::new() } else { format!(" [{}]", codes.join(", ")) };
    format!("{} ({}){codes}, {}", p.name, words(&p.kind), country(&p.country))
}

fn refs(r: &[TransportRef]) -> String {
    r.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn unit_words(u: Option<UnitCode>) -> String {
    u.map_or("specimens".to_string(), |u| format!("{} ({})", u.as_str(), u.description()))
}

/// A seized line's amount: the quantity in its unit (or "amount unknown"), then its further
/// measures, e.g. "412.5 KIL (Kilograms) and 38 specimens".
fn amounts(i: &SeizedItem) -> String {
    let mut out = match &i.quantity {
        Some(q) => format!("{q} {}", unit_words(i.unit)),
        None => "amount unknown".to_string(),
    };
    for m in &i.measures {
        out.push_str(&format!(" and {} {}", m.amount, unit_words(m.unit)));
    }
    out
}

fn pieces(p: Option<u32>, kg: &Option<Amount>) -> String {
    match (p, kg) {
        (None, None) => "-".to_string(),
        (p, k) => format!(
            "{} pieces, {} kg",
            p.map_or("?".into(), |p| p.to_string()),
            k.as_ref().map_or("?".into(), ToString::to_string)
        ),
    }
}

pub(crate) fn utc(ms: u64) -> String {
    format!("{} UTC", utc_minute(ms))
}

fn words<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(|s| s.replace('_', " "))).unwrap_or_default()
}

/// Writes a message's content for a person: every code with what it means.
///
/// # Errors
/// Output errors only.
pub fn render(body: &Body, out: &mut impl Write) -> std::io::Result<()> {
    let field = |out: &mut dyn Write, name: &str, value: &str| -> std::io::Result<()> {
        if value.is_empty() { Ok(()) } else { writeln!(out, "{name:<13} {value}") }
    };
    match &body.content {
        Content::Warning(w) => {
            field(out, "warning", &w.title)?;
            field(out, "commodity", &w.commodity)?;
            for t in &w.species {
                field(out, "species", &taxon(t))?;
            }
            for h in &w.hs_codes {
                field(out, "HS code", &hs(h))?;
            }
            field(out, "route", &route(&w.route))?;
            let conveyance: Vec<String> = w.conveyance.iter().map(words).collect();
            field(out, "conveyance", &conveyance.join(", "))?;
            field(out, "concealment", w.concealment.as_deref().unwrap_or(""))?;
            for i in &w.indicators {
                field(out, "indicator", i)?;
            }
            field(out, "shipment", &refs(&w.shipment))?;
            if let Some(a) = &w.arrival {
                field(out, "expected", &format!("{} at {}", utc(a.at.as_millis()), place(&a.place)))?;
            }
            field(out, "valid until", w.valid_until.as_ref().map_or("", |d| d.as_str()))?;
            field(out, "summary", &w.summary)?;
            field(out, "asked to", &w.action)?;
        }
        Content::SeizureReport(r) => {
            field(out, "seizure", r.date.as_str())?;
            field(out, "place", &place(&r.place))?;
            field(out, "reported by", &country(&r.reporting))?;
            field(out, "agency", r.agency.as_deref().unwrap_or(""))?;
            field(out, "case", r.case_reference.as_deref().unwrap_or(""))?;
            field(out, "operation", r.operation.as_deref().unwrap_or(""))?;
            field(out, "reason", &r.reason.as_ref().map(words).unwrap_or_default())?;
            field(out, "declared as", r.declared_goods.as_deref().unwrap_or(""))?;
            field(out, "packages", &r.packages.map(|p| p.to_string()).unwrap_or_default())?;
            field(out, "shipment", &refs(&r.shipment))?;
            field(out, "route", &route(&r.route))?;
            field(out, "conveyance", &words(&r.conveyance))?;
            if let Some(m) = r.transport_mode {
                field(out, "mode", &format!("{} (UN/CEFACT Rec. 19 code {})", words(&m), m.code()))?;
            }
            let detection: Vec<String> = r.detection.iter().map(words).collect();
            field(out, "detection", &detection.join(", "))?;
            for (n, i) in r.items.iter().enumerate() {
                let mut line = format!(
                    "{} of {} ({}), {}",
                    amounts(i),
                    i.term.as_str(),
                    i.term.description(),
                    taxon(&i.taxon)
                );
                if let Some(live) = i.live {
                    line.push_str(&format!(", {live} alive"));
                }
                if let Some(dead) = i.dead {
                    line.push_str(&format!(", {dead} dead"));
                }
                if let Some(a) = &i.appendix {
                    line.push_str(&format!(", CITES appendix {}", a.as_str()));
                }
                if let Some(s) = &i.source {
                    line.push_str(&format!(", source {} ({})", s.as_str(), s.description()));
                }
                if let Some(p) = &i.purpose {
                    line.push_str(&format!(", purpose {} ({})", p.as_str(), p.description()));
                }
                field(out, &format!("line {}", n + 1), &line)?;
                if let Some(h) = &i.hs_declared {
                    field(out, "  declared", &hs(h))?;
                }
                if let Some(h) = &i.hs_actual {
                    field(out, "  found", &hs(h))?;
                }
                if let Some(iv) = &i.ivory {
                    let text = format!(
                        "raw {}; worked {}",
                        pieces(iv.raw_pieces, &iv.raw_kg),
                        pieces(iv.worked_pieces, &iv.worked_kg)
                    );
                    field(out, "  ivory", &text)?;
                }
            }
            if let Some(v) = &r.indicators.value {
                let basis =
                    r.indicators.value_basis.as_ref().map(|b| format!(", {}", words(b))).unwrap_or_default();
                let date =
                    r.indicators.value_date.as_ref().map(|d| format!(" as of {d}")).unwrap_or_default();
                let text =
                    format!("{} {} ({}){basis}{date}", v.amount, v.currency.as_str(), v.currency.name());
                field(out, "value", &text)?;
            }
            field(
                out,
                "organised",
                if r.indicators.organised_crime { "organised crime suspected" } else { "" },
            )?;
            field(out, "corruption", if r.indicators.corruption { "corruption suspected" } else { "" })?;
            let nat: Vec<String> = r.nationalities.iter().map(country).collect();
            field(out, "offenders", &nat.join(", "))?;
            field(out, "concealed", &r.concealment_method.as_ref().map(words).unwrap_or_default())?;
            field(out, "concealment", r.concealment.as_deref().unwrap_or(""))?;
            field(out, "warning", &r.warning.map(|w| w.to_string()).unwrap_or_default())?;
            for rel in &r.related {
                field(out, "related", &rel.to_string())?;
            }
            field(out, "narrative", r.narrative.as_deref().unwrap_or(""))?;
        }
        Content::Feedback(f) => {
            field(out, "feedback on", &f.warning.to_string())?;
            field(out, "outcome", &words(&f.outcome))?;
            field(out, "date", f.date.as_str())?;
            if let Some(p) = &f.place {
                field(out, "place", &place(p))?;
            }
            field(out, "seizure", &f.seizure.map(|s| s.to_string()).unwrap_or_default())?;
            field(out, "shipment", &refs(&f.shipment))?;
            field(out, "details", &f.details)?;
        }
        Content::Bulletin(b) => {
            field(out, "bulletin", &b.title)?;
            field(out, "reference", b.reference.as_deref().unwrap_or(""))?;
            let countries: Vec<String> = b.countries.iter().map(country).collect();
            field(out, "countries", &countries.join(", "))?;
            for t in &b.species {
                field(out, "species", &taxon(t))?;
            }
            field(out, "summary", &b.summary)?;
            writeln!(out, "\n{}", b.body)?;
        }
        Content::CaseFollowUp(c) => {
            field(out, "case of", &c.seizure.to_string())?;
            field(out, "as of", c.date.as_str())?;
            field(out, "outcome", &words(&c.outcome))?;
            field(out, "arrests", &c.arrests.to_string())?;
            for ch in &c.charges {
                field(out, "charge", ch)?;
            }
            field(out, "court", c.court.as_deref().unwrap_or(""))?;
            field(out, "case number", c.case_number.as_deref().unwrap_or(""))?;
            for p in &c.penalties {
                let mut t = words(&p.kind);
                if let Some(m) = &p.amount {
                    t.push_str(&format!(" of {} {} ({})", m.amount, m.currency.as_str(), m.currency.name()));
                }
                if let Some(months) = p.months {
                    t.push_str(&format!(", {months} months"));
                }
                field(out, "penalty", &t)?;
            }
            for d in &c.disposal {
                let when = d.date.as_ref().map(|d| format!(" on {d}")).unwrap_or_default();
                field(out, "specimens", &format!("{}{when}", words(&d.kind)))?;
            }
            field(out, "details", c.details.as_deref().unwrap_or(""))?;
        }
        Content::ForensicSample(x) => {
            field(out, "samples of", &x.seizure.to_string())?;
            field(out, "line", &x.line.map(|l| l.to_string()).unwrap_or_default())?;
            field(out, "analysis", &words(&x.analysis))?;
            field(out, "samples", &x.samples.to_string())?;
            field(out, "laboratory", &x.laboratory)?;
            field(out, "requested", x.requested.as_str())?;
            field(out, "completed", x.completed.as_ref().map_or("pending", |d| d.as_str()))?;
            let origin: Vec<String> = x.origin.iter().map(country).collect();
            field(out, "origin", &origin.join(", "))?;
            field(out, "result", x.result.as_deref().unwrap_or(""))?;
        }
        Content::Receipt(r) => {
            field(out, "receipt", &words(&r.status))?;
            field(out, "for", &r.message.to_string())?;
            field(out, "note", r.note.as_deref().unwrap_or(""))?;
        }
        other => {
            let v = serde_json::to_string_pretty(other).unwrap_or_default();
            writeln!(out, "{v}")?;
        }
    }
    if let Some(g) = &body.grading {
        field(out, "grading", &format!("{} ({})", g.as_str(), g.explain()))?;
    }
    for st in &body.statements {
        field(out, "statement", &format!("{} [{}: {}]", st.text, st.grading, st.grading.explain()))?;
    }
    for h in &body.handling {
        field(out, "handling", &format!("{h:?}: {}", h.explain()))?;
    }
    field(out, "restriction", body.handling_note.as_deref().unwrap_or(""))?;
    Ok(())
}

fn taxon(t: &godwit_protocol::content::Taxon) -> String {
    match &t.common {
        Some(c) => format!("{} ({c})", t.scientific),
        None => t.scientific.clone(),
    }
}

/// One row of a seizure export: one seized line of one report, in the columns a CITES
/// annual illegal trade report asks for (and those an analyst matches on).
#[derive(Debug, Serialize)]
pub struct SeizureRow {
    message_id: String,
    administration: String,
    reporting_country: String,
    seizing_agency: String,
    case_reference: String,
    operation: String,
    seizure_date: String,
    place: String,
    place_kind: String,
    place_country: String,
    place_locode: String,
    place_iata: String,
    origin: String,
    departure: String,
    transit: String,
    destination: String,
    transport_mode: String,
    conveyance: String,
    shipment: String,
    declared_goods: String,
    packages: String,
    reason: String,
    detection: String,
    concealment_method: String,
    line: usize,
    scientific_name: String,
    common_name: String,
    cites_appendix: String,
    term: String,
    term_description: String,
    quantity: String,
    unit: String,
    unit_description: String,
    count: String,
    live: String,
    dead: String,
    source: String,
    purpose: String,
    hs_declared: String,
    hs_found: String,
    value: String,
    currency: String,
    value_basis: String,
    offender_nationalities: String,
    organised_crime: bool,
    corruption: bool,
    warning: String,
    concealment: String,
}

/// The CSV header: the rows' field names, in order.
pub const HEADER: [&str; 48] = [
    "message_id",
    "administration",
    "reporting_country",
    "seizing_agency",
    "case_reference",
    "operation",
    "seizure_date",
    "place",
    "place_kind",
    "place_country",
    "place_locode",
    "place_iata",
    "origin",
    "departure",
    "transit",
    "destination",
    "transport_mode",
    "conveyance",
    "shipment",
    "declared_goods",
    "packages",
    "reason",
    "detection",
    "concealment_method",
    "line",
    "scientific_name",
    "common_name",
    "cites_appendix",
    "term",
    "term_description",
    "quantity",
    "unit",
    "unit_description",
    "count",
    "live",
    "dead",
    "source",
    "purpose",
    "hs_declared",
    "hs_found",
    "value",
    "currency",
    "value_basis",
    "offender_nationalities",
    "organised_crime",
    "corruption",
    "warning",
    "concealment",
];

/// The rows of one seizure report.
pub fn rows(item: &InboxItem, r: &SeizureReport) -> Vec<SeizureRow> {
    let code = |c: &Option<Country>| c.map(|c| c.as_str().to_string()).unwrap_or_default();
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let opt_num = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    r.items
        .iter()
        .enumerate()
        .map(|(n, i)| SeizureRow {
            message_id: item.id.to_string(),
            administration: item.administration.clone(),
            reporting_country: r.reporting.as_str().into(),
            seizing_agency: opt(&r.agency),
            case_reference: opt(&r.case_reference),
            operation: opt(&r.operation),
            seizure_date: r.date.as_str().into(),
            place: r.place.name.clone(),
            place_kind: words(&r.place.kind),
            place_country: r.place.country.as_str().into(),
            place_locode: r.place.locode.as_ref().map(ToString::to_string).unwrap_or_default(),
            place_iata: r.place.iata.map(|a| a.to_string()).unwrap_or_default(),
            origin: code(&r.route.origin),
            departure: code(&r.route.departure),
            transit: r.route.transit.iter().map(Country::as_str).collect::<Vec<_>>().join(";"),
            destination: code(&r.route.destination),
            transport_mode: r.transport_mode.map(|m| m.code().to_string()).unwrap_or_default(),
            conveyance: words(&r.conveyance),
            shipment: refs(&r.shipment),
            declared_goods: opt(&r.declared_goods),
            packages: opt_num(r.packages),
            reason: r.reason.as_ref().map(words).unwrap_or_default(),
            detection: r.detection.iter().map(words).collect::<Vec<_>>().join(";"),
            concealment_method: r.concealment_method.as_ref().map(words).unwrap_or_default(),
            line: n + 1,
            scientific_name: i.taxon.scientific.clone(),
            common_name: i.taxon.common.clone().unwrap_or_default(),
            cites_appendix: i.appendix.map(|a| a.as_str().to_string()).unwrap_or_default(),
            term: i.term.as_str().into(),
            term_description: i.term.description().into(),
            quantity: i.quantity.as_ref().map_or_else(|| "unknown".to_string(), ToString::to_string),
            unit: i.unit.map(|u| u.as_str().to_string()).unwrap_or_default(),
            unit_description: i.unit.map_or("number of specimens", |u| u.description()).into(),
            count: match (i.unit, &i.quantity) {
                (None, Some(q)) => q.to_string(),
                _ => i
                    .measures
                    .iter()
                    .find(|m| m.unit.is_none())
                    .map(|m| m.amount.to_string())
                    .unwrap_or_default(),
            },
            live: opt_num(i.live),
            dead: opt_num(i.dead),
            source: i.source.map(|s| s.as_str().to_string()).unwrap_or_default(),
            purpose: i.purpose.map(|p| p.as_str().to_string()).unwrap_or_default(),
            hs_declared: i.hs_declared.as_ref().map(|h| h.as_str().to_string()).unwrap_or_default(),
            hs_found: i.hs_actual.as_ref().map(|h| h.as_str().to_string()).unwrap_or_default(),
            value: r.indicators.value.as_ref().map(|v| v.amount.to_string()).unwrap_or_default(),
            currency: r
                .indicators
                .value
                .as_ref()
                .map(|v| v.currency.as_str().to_string())
                .unwrap_or_default(),
            value_basis: r.indicators.value_basis.as_ref().map(words).unwrap_or_default(),
            offender_nationalities: r.nationalities.iter().map(Country::as_str).collect::<Vec<_>>().join(";"),
            organised_crime: r.indicators.organised_crime,
            corruption: r.indicators.corruption,
            warning: r.warning.map(|w| w.to_string()).unwrap_or_default(),
            concealment: r.concealment.clone().unwrap_or_default(),
        })
        .collect()
}

/// Writes rows as CSV (a header line, then one line per row) or as a JSON array.
///
/// # Errors
/// Output errors.
pub fn write_rows(rows: &[SeizureRow], csv: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if csv {
        let mut w = csv::Writer::from_writer(out);
        for r in rows {
            w.serialize(r)?;
        }
        if rows.is_empty() {
            // The header alone, so that a spreadsheet still gets its columns.
            w.write_record(HEADER)?;
        }
        w.flush()?;
    } else {
        writeln!(out, "{}", serde_json::to_string_pretty(rows)?)?;
    }
    Ok(())
}

/// Decodes a body the node sent.
///
/// # Errors
/// A [`crate::node::Failure`].
pub fn decode(bytes: &[u8]) -> anyhow::Result<Body> {
    Body::decode(bytes)
        .map_err(|e| fail(EXIT_REFUSED, format!("the node sent a body that does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_csv_header_names_every_column_in_order() {
        let item = InboxItem {
            id: godwit_protocol::ids::MessageId([3; 32]),
            author: godwit_protocol::identity::IdentityKey::from_seed(&[1; 32]).node_id(),
            administration: "Kenya Revenue Authority".into(),
            mode: "direct".into(),
            channel: None,
            channel_name: None,
            marking: "TLP:AMBER".into(),
            priority: "immediate".into(),
            created_ms: 0,
            kind: "seizure_report".into(),
            title: String::new(),
            refers_to: None,
            status: "new".into(),
        };
        let rows = rows(&item, &godwit_protocol::samples::seizure_report());
        let mut out = Vec::new();
        write_rows(&rows, true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().next().unwrap(), HEADER.join(","));
        let mut empty = Vec::new();
        write_rows(&[], true, &mut empty).unwrap();
        assert_eq!(String::from_utf8(empty).unwrap().trim_end(), HEADER.join(","));
        // 38 tusks beside their 412.5 kg; the air waybill; the port's codes.
        assert_eq!((rows[0].count.as_str(), rows[0].quantity.as_str()), ("38", "412.5"));
        assert!(rows[0].shipment.contains("air waybill 176-12345675"), "{}", rows[0].shipment);
        assert_eq!(
            (rows[0].place_iata.as_str(), rows[0].place_locode.as_str(), rows[0].transport_mode.as_str()),
            ("NBO", "KENBO", "4")
        );
    }

    #[test]
    fn dates_and_times_are_computed_in_utc() {
        assert_eq!(parse_since("2026-11-30").unwrap(), 1_795_996_800_000);
        assert_eq!(utc_minute(1_709_212_020_000), "2024-02-29 13:07");
        assert_eq!(utc_minute(0), "-");
        assert_eq!(utc_minute(1), "1970-01-01 00:00");
        let now = 1_795_996_800_000;
        assert_eq!(parse_since_at("24h", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_since_at(" 7d ", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_since_at("99999999999d", now).unwrap(), 0);
        // The clock is read: a day back is before now and after the epoch.
        let day_ago = parse_since("24h").unwrap();
        assert!(day_ago > now - 86_400_000);
        assert!(
            parse_since("2026-02-30").is_err() && parse_since("7w").is_err() && parse_since("7д").is_err()
        );
        assert_eq!(today().len(), 10);
    }
}
