//! Seizure reports as MISP events (for a customs or police MISP instance) and as rows of the
//! ETIS elephant-ivory seizure form.
//!
//! MISP: one event per report, with the TLP 2.0 and Admiralty-scale taxonomies' tags and two
//! Godwit object templates, `wildlife-seizure` and `seized-specimen` (in `docs/misp/objects/`,
//! in the MISP objects repository's format): one seizure object, and one specimen object per
//! seized line that is `part-of` it. ETIS: one row per report with elephant ivory. Either
//! refuses, by name, a report it cannot express instead of dropping part of it.

use godwit_admin_api::InboxItem;
use godwit_protocol::content::{Body, Country, Grading, SeizedItem, SeizureReport, TransportRef};
use serde::Serialize;
use serde_json::{Value, json};

/// The `wildlife-seizure` object template.
pub const SEIZURE_TEMPLATE: &str = include_str!("../../docs/misp/objects/wildlife-seizure/definition.json");
/// The `seized-specimen` object template.
pub const SPECIMEN_TEMPLATE: &str = include_str!("../../docs/misp/objects/seized-specimen/definition.json");

/// Why a report cannot be exported.
#[derive(Debug, thiserror::Error)]
#[error("{id}: {problem}")]
pub struct Unexpressible {
    /// The report.
    pub id: String,
    /// What its target cannot express.
    pub problem: String,
}

/// A deterministic RFC 9562 version-8 UUID from a message id and a per-object number.
fn uuid(id: &godwit_protocol::ids::MessageId, n: u16) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&id.0[..16]);
    b[14] ^= (n >> 8) as u8;
    b[15] ^= n as u8;
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn template(text: &str) -> (String, String) {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    (v["uuid"].as_str().unwrap_or_default().to_string(), v["version"].to_string())
}

fn words<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(|s| s.replace('_', " "))).unwrap_or_default()
}

/// The MISP tags of a marking (`TLP:AMBER+STRICT` → `tlp:amber+strict`) and a grading.
fn tags(marking: &str, grading: Option<&Grading>) -> Vec<Value> {
    let mut t = vec![json!({ "name": marking.to_ascii_lowercase() })];
    if let Some(g) = grading {
        let r = g.reliability().to_ascii_lowercase();
        t.push(json!({ "name": format!("admiralty-scale:source-reliability=\"{r}\"") }));
        t.push(json!({ "name": format!("admiralty-scale:information-credibility=\"{}\"", g.credibility()) }));
    }
    t
}

struct Attrs(Vec<Value>);

impl Attrs {
    fn add(&mut self, relation: &str, kind: &str, value: impl ToString) {
        let value = value.to_string();
        if !value.is_empty() {
            let category = if kind == "attachment" { "External analysis" } else { "Other" };
            self.0.push(json!({
                "object_relation": relation,
                "type": kind,
                "category": category,
                "value": value,
                "to_ids": false,
            }));
        }
    }
    fn text(&mut self, relation: &str, value: impl ToString) {
        self.add(relation, "text", value);
    }
}

/// One MISP event for a seizure report.
///
/// # Errors
/// [`Unexpressible`] for what MISP cannot carry (nothing in today's seizure reports).
pub fn event(item: &InboxItem, body: &Body, r: &SeizureReport) -> Result<Value, Unexpressible> {
    let id = item.id;
    // MISP's admiralty-scale taxonomy is Admiralty's alone: another scheme's letters would be
    // read as Admiralty's.
    for g in body.grading.iter().chain(body.statements.iter().map(|s| &s.grading)) {
        if g.scheme() != godwit_protocol::content::GradingScheme::Admiralty {
            return Err(Unexpressible {
                id: id.to_string(),
                problem: format!(
                    "graded {g} ({}): MISP has no taxonomy for that scheme, and its admiralty-scale tags would misstate it",
                    g.explain()
                ),
            });
        }
    }
    if !body.statements.is_empty() {
        return Err(Unexpressible {
            id: id.to_string(),
            problem: "grades statements one by one, which MISP events cannot carry: share it as it is".into(),
        });
    }
    if !body.handling.is_empty() {
        return Err(Unexpressible {
            id: id.to_string(),
            problem: "carries Europol handling codes, which no MISP taxonomy expresses: share it as it is"
                .into(),
        });
    }
    let (seizure_uuid, specimen_uuid) = (uuid(&id, 0), template(SPECIMEN_TEMPLATE));
    let mut a = Attrs(Vec::new());
    a.add("seizure-date", "datetime", format!("{}T00:00:00Z", r.date));
    a.text("reporting-country", r.reporting);
    a.text("place", &r.place.name);
    a.text("place-kind", words(&r.place.kind));
    a.text("place-country", r.place.country);
    a.text("place-locode", r.place.locode.as_ref().map(ToString::to_string).unwrap_or_default());
    a.text("place-iata", r.place.iata.map(|x| x.to_string()).unwrap_or_default());
    a.text("seizing-agency", r.agency.clone().unwrap_or_default());
    a.text("case-reference", r.case_reference.clone().unwrap_or_default());
    a.text("operation", r.operation.clone().unwrap_or_default());
    a.text("reason", r.reason.as_ref().map(words).unwrap_or_default());
    a.text("declared-goods", r.declared_goods.clone().unwrap_or_default());
    a.add("packages", "counter", r.packages.map(|p| p.to_string()).unwrap_or_default());
    if let Some(m) = r.transport_mode {
        a.text("transport-mode", format!("{} {}", m.code(), words(&m)));
    }
    a.text("conveyance", words(&r.conveyance));
    for d in &r.detection {
        a.text("detection", words(d));
    }
    a.text("concealment-method", r.concealment_method.as_ref().map(words).unwrap_or_default());
    a.text("concealment", r.concealment.clone().unwrap_or_default());
    for t in &r.shipment {
        match t {
            TransportRef::AirWaybill(x) => a.text("air-waybill", x),
            TransportRef::Container(x) => a.text("container", x),
            TransportRef::Vessel(x) => a.text("vessel-imo", x),
            TransportRef::Flight(f) => a.text("flight", format!("{}{} {}", f.airline, f.number, f.date)),
            TransportRef::BillOfLading(x) => a.text("bill-of-lading", x),
            TransportRef::Vehicle(v) => a.text("vehicle", format!("{} {}", v.plate, v.country)),
            TransportRef::PostalItem(x) => a.text("postal-item", x),
            TransportRef::Carrier(c) => a.text("carrier", &c.name),
        }
    }
    let code = |c: &Option<Country>| c.map(|c| c.to_string()).unwrap_or_default();
    a.text("origin-country", code(&r.route.origin));
    a.text("departure-country", code(&r.route.departure));
    for c in &r.route.transit {
        a.text("transit-country", c);
    }
    a.text("destination-country", code(&r.route.destination));
    for c in &r.nationalities {
        a.text("offender-nationality", c);
    }
    if let Some(v) = &r.indicators.value {
        a.add("value", "float", &v.amount);
        a.text("currency", v.currency);
    }
    a.text("value-basis", r.indicators.value_basis.as_ref().map(words).unwrap_or_default());
    a.add("organised-crime", "boolean", u8::from(r.indicators.organised_crime));
    a.add("corruption", "boolean", u8::from(r.indicators.corruption));
    a.text("narrative", r.narrative.clone().unwrap_or_default());
    a.text("related-warning", r.warning.map(|w| w.to_string()).unwrap_or_default());
    a.text("godwit-message-id", id);
    for (n, att) in r.attachments.iter().enumerate() {
        use base64::Engine;
        let name = att.name.clone().unwrap_or_else(|| format!("attachment-{}", n + 1));
        a.add("attachment", "attachment", name);
        if let Some(last) = a.0.last_mut() {
            last["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&att.data));
        }
    }
    let (seizure_tpl, seizure_ver) = template(SEIZURE_TEMPLATE);
    let mut objects = vec![json!({
        "name": "wildlife-seizure",
        "meta-category": "misc",
        "template_uuid": seizure_tpl,
        "template_version": seizure_ver,
        "uuid": seizure_uuid,
        "description": "Godwit seizure report",
        "Attribute": a.0,
        "ObjectReference": [],
    })];
    for (n, i) in r.items.iter().enumerate() {
        objects.push(json!({
            "name": "seized-specimen",
            "meta-category": "misc",
            "template_uuid": specimen_uuid.0,
            "template_version": specimen_uuid.1,
            "uuid": uuid(&id, n as u16 + 1),
            "description": format!("seized line {}", n + 1),
            "Attribute": specimen(i, n + 1),
            "ObjectReference": [{ "referenced_uuid": seizure_uuid, "relationship_type": "part-of" }],
        }));
    }
    let first = r.items.first().map(|i| format!(": {}", i.taxon.scientific)).unwrap_or_default();
    Ok(json!({
        "Event": {
            "uuid": uuid(&id, 0xffff),
            "info": format!("Wildlife seizure {} at {} ({}){first}", r.date, r.place.name, r.reporting),
            "date": r.date.as_str(),
            "threat_level_id": "2",
            "analysis": "2",
            "distribution": "0",
            "published": false,
            "Tag": tags(&item.marking, body.grading.as_ref()),
            "Object": objects,
        }
    }))
}

fn specimen(i: &SeizedItem, line: usize) -> Vec<Value> {
    let mut a = Attrs(Vec::new());
    a.text("scientific-name", &i.taxon.scientific);
    a.text("common-name", i.taxon.common.clone().unwrap_or_default());
    a.text("cites-appendix", i.appendix.map(|x| x.as_str().to_string()).unwrap_or_default());
    a.text("cites-term", format!("{} {}", i.term.as_str(), i.term.description()));
    if let Some(q) = &i.quantity {
        a.add("quantity", "float", q);
    }
    a.text("cites-unit", i.unit.map(|u| format!("{} {}", u.as_str(), u.description())).unwrap_or_default());
    let count = match (i.unit, &i.quantity) {
        (None, Some(q)) => q.to_string(),
        _ => i.measures.iter().find(|m| m.unit.is_none()).map(|m| m.amount.to_string()).unwrap_or_default(),
    };
    a.add("count", "counter", count);
    if i.amount_unknown {
        a.add("amount-unknown", "boolean", 1);
    }
    a.add("live", "counter", i.live.map(|x| x.to_string()).unwrap_or_default());
    a.add("dead", "counter", i.dead.map(|x| x.to_string()).unwrap_or_default());
    if let Some(iv) = &i.ivory {
        a.add("ivory-raw-pieces", "counter", iv.raw_pieces.map(|x| x.to_string()).unwrap_or_default());
        a.add("ivory-raw-kg", "float", iv.raw_kg.as_ref().map(ToString::to_string).unwrap_or_default());
        a.add("ivory-worked-pieces", "counter", iv.worked_pieces.map(|x| x.to_string()).unwrap_or_default());
        a.add("ivory-worked-kg", "float", iv.worked_kg.as_ref().map(ToString::to_string).unwrap_or_default());
    }
    a.text("cites-source", i.source.map(|x| x.as_str().to_string()).unwrap_or_default());
    a.text("cites-purpose", i.purpose.map(|x| x.as_str().to_string()).unwrap_or_default());
    a.text("hs-declared", i.hs_declared.as_ref().map(|h| h.as_str().to_string()).unwrap_or_default());
    a.text("hs-found", i.hs_actual.as_ref().map(|h| h.as_str().to_string()).unwrap_or_default());
    a.add("line", "counter", line);
    a.0
}

/// One row of the ETIS seizure data form: one seizure with elephant ivory.
#[derive(Debug, Serialize)]
pub struct EtisRow {
    message_id: String,
    reporting_country: String,
    seizure_date: String,
    place: String,
    place_country: String,
    seizing_agency: String,
    case_reference: String,
    raw_pieces: String,
    raw_kg: String,
    worked_pieces: String,
    worked_kg: String,
    transport_mode: String,
    conveyance: String,
    detection: String,
    concealment: String,
    origin: String,
    departure: String,
    transit: String,
    destination: String,
    offender_nationalities: String,
}

/// A decimal amount (at most 6 decimals, as amounts are) in millionths.
fn micro(s: &str) -> u128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<6}");
    int.parse::<u128>().unwrap_or(0) * 1_000_000
        + frac.get(..6).and_then(|f| f.parse::<u128>().ok()).unwrap_or(0)
}

/// Millionths of a kg as a decimal, without trailing zeros; empty for 0.
fn kgs(k: u128) -> String {
    if k == 0 {
        return String::new();
    }
    let frac = format!("{:06}", k % 1_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{}", k / 1_000_000) } else { format!("{}.{frac}", k / 1_000_000) }
}

/// Whether a line is elephant ivory (the ETIS form's subject).
fn is_ivory(i: &SeizedItem) -> bool {
    let elephant = i.taxon.scientific.starts_with("Loxodonta") || i.taxon.scientific.starts_with("Elephas");
    elephant
        && (i.ivory.is_some() || matches!(i.term.as_str(), "TUS" | "IVP" | "IVC" | "IVS" | "CAR" | "IVO"))
}

/// The ETIS row of a report, or `None` when it has no elephant ivory.
///
/// # Errors
/// [`Unexpressible`] for an ivory line whose pieces and weight the form cannot be given.
pub fn etis(item: &InboxItem, r: &SeizureReport) -> Result<Option<EtisRow>, Unexpressible> {
    let lines: Vec<(usize, &SeizedItem)> = r.items.iter().enumerate().filter(|(_, i)| is_ivory(i)).collect();
    if lines.is_empty() {
        return Ok(None);
    }
    // Weights summed exactly, in millionths of a kg.
    let (mut raw_pieces, mut raw_kg, mut worked_pieces, mut worked_kg) = (0u64, 0u128, 0u64, 0u128);
    let refuse = |n: usize, why: &str| Unexpressible {
        id: item.id.to_string(),
        problem: format!("line {}: {why}", n + 1),
    };
    for (n, i) in lines {
        let whole = |a: &godwit_protocol::content::Amount| {
            a.as_str().parse::<u64>().map_err(|_| refuse(n, "a count of pieces is a whole number"))
        };
        if let Some(iv) = &i.ivory {
            raw_pieces += u64::from(iv.raw_pieces.unwrap_or(0));
            worked_pieces += u64::from(iv.worked_pieces.unwrap_or(0));
            raw_kg += iv.raw_kg.as_ref().map_or(0, |a| micro(a.as_str()));
            worked_kg += iv.worked_kg.as_ref().map_or(0, |a| micro(a.as_str()));
            continue;
        }
        let (weight, pieces) = match (i.unit.map(|u| u.as_str()), &i.quantity) {
            (Some("KIL"), Some(q)) => {
                let count =
                    i.measures.iter().find(|m| m.unit.is_none()).map(|m| whole(&m.amount)).transpose()?;
                (micro(q.as_str()), count.unwrap_or(0))
            }
            (None, Some(q)) => (0, whole(q)?),
            _ => {
                return Err(refuse(
                    n,
                    "the ETIS form takes ivory in kg or pieces: give the line's ivory pieces and kg",
                ));
            }
        };
        if matches!(i.term.as_str(), "TUS" | "IVP" | "IVS") {
            raw_pieces += pieces;
            raw_kg += weight;
        } else {
            worked_pieces += pieces;
            worked_kg += weight;
        }
    }
    let code = |c: &Option<Country>| c.map(|c| c.to_string()).unwrap_or_default();
    let num = |n: u64| if n == 0 { String::new() } else { n.to_string() };
    Ok(Some(EtisRow {
        message_id: item.id.to_string(),
        reporting_country: r.reporting.to_string(),
        seizure_date: r.date.to_string(),
        place: r.place.name.clone(),
        place_country: r.place.country.to_string(),
        seizing_agency: r.agency.clone().unwrap_or_default(),
        case_reference: r.case_reference.clone().unwrap_or_default(),
        raw_pieces: num(raw_pieces),
        raw_kg: kgs(raw_kg),
        worked_pieces: num(worked_pieces),
        worked_kg: kgs(worked_kg),
        transport_mode: r.transport_mode.map(|m| words(&m)).unwrap_or_default(),
        conveyance: words(&r.conveyance),
        detection: r.detection.iter().map(words).collect::<Vec<_>>().join(";"),
        concealment: r.concealment_method.as_ref().map(words).unwrap_or_default(),
        origin: code(&r.route.origin),
        departure: code(&r.route.departure),
        transit: r.route.transit.iter().map(ToString::to_string).collect::<Vec<_>>().join(";"),
        destination: code(&r.route.destination),
        offender_nationalities: r.nationalities.iter().map(ToString::to_string).collect::<Vec<_>>().join(";"),
    }))
}

/// Checks a MISP event against the object templates and the taxonomies it uses: every
/// attribute's relation is in its object's template with that attribute type (and is given at
/// most once unless the template says `multiple`), every required relation is present, every
/// reference points to an object of the event, and every tag is a TLP 2.0 or Admiralty-scale
/// tag.
///
/// # Errors
/// What does not conform.
pub fn check_event(event: &Value) -> Result<(), String> {
    let templates: Vec<Value> = [SEIZURE_TEMPLATE, SPECIMEN_TEMPLATE]
        .iter()
        .map(|t| serde_json::from_str(t).map_err(|e| format!("template: {e}")))
        .collect::<Result<_, _>>()?;
    let e = &event["Event"];
    for key in ["uuid", "info", "date", "threat_level_id", "analysis", "distribution"] {
        if e[key].is_null() {
            return Err(format!("the event has no {key}"));
        }
    }
    let tlp = ["tlp:clear", "tlp:green", "tlp:amber", "tlp:amber+strict", "tlp:red"];
    for tag in e["Tag"].as_array().into_iter().flatten() {
        let name = tag["name"].as_str().unwrap_or_default();
        let admiralty = name
            .strip_prefix("admiralty-scale:source-reliability=\"")
            .is_some_and(|v| matches!(v, "a\"" | "b\"" | "c\"" | "d\"" | "e\"" | "f\""))
            || name
                .strip_prefix("admiralty-scale:information-credibility=\"")
                .is_some_and(|v| matches!(v, "1\"" | "2\"" | "3\"" | "4\"" | "5\"" | "6\""));
        if !tlp.contains(&name) && !admiralty {
            return Err(format!("tag {name:?} is in neither the tlp nor the admiralty-scale taxonomy"));
        }
    }
    let objects = e["Object"].as_array().ok_or("the event has no objects")?;
    let uuids: Vec<&str> = objects.iter().filter_map(|o| o["uuid"].as_str()).collect();
    for o in objects {
        let name = o["name"].as_str().unwrap_or_default();
        let t = templates
            .iter()
            .find(|t| t["name"] == name)
            .ok_or_else(|| format!("object {name:?} has no template"))?;
        if o["template_uuid"] != t["uuid"]
            || o["template_version"].as_str() != Some(t["version"].to_string().as_str())
        {
            return Err(format!("object {name:?} names another template version"));
        }
        let mut seen: Vec<&str> = Vec::new();
        for a in o["Attribute"].as_array().into_iter().flatten() {
            let rel = a["object_relation"].as_str().unwrap_or_default();
            let spec = &t["attributes"][rel];
            if spec.is_null() {
                return Err(format!("{name}: {rel:?} is not in the template"));
            }
            if spec["misp-attribute"] != a["type"] {
                return Err(format!("{name}: {rel} is a {}, not a {}", spec["misp-attribute"], a["type"]));
            }
            if seen.contains(&rel) && spec["multiple"] != true {
                return Err(format!("{name}: {rel} is given twice"));
            }
            if a["value"].as_str().is_none_or(str::is_empty) {
                return Err(format!("{name}: {rel} has no value"));
            }
            seen.push(rel);
        }
        for req in t["required"].as_array().into_iter().flatten() {
            let req = req.as_str().unwrap_or_default();
            if !seen.contains(&req) {
                return Err(format!("{name}: the required {req} is missing"));
            }
        }
        for r in o["ObjectReference"].as_array().into_iter().flatten() {
            if !r["referenced_uuid"].as_str().is_some_and(|u| uuids.contains(&u)) {
                return Err(format!("{name}: a reference to an object not in the event"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use godwit_protocol::content::Content;

    fn item(kind: &str) -> InboxItem {
        InboxItem {
            id: godwit_protocol::ids::MessageId([7; 32]),
            author: godwit_protocol::identity::IdentityKey::from_seed(&[1; 32]).node_id(),
            administration: "Kenya Revenue Authority".into(),
            mode: "channel".into(),
            channel: None,
            channel_name: None,
            marking: "TLP:AMBER".into(),
            priority: "immediate".into(),
            created_ms: 0,
            kind: kind.into(),
            title: String::new(),
            refers_to: None,
            status: "new".into(),
        }
    }

    #[test]
    fn a_seizure_report_is_a_misp_event_that_conforms_to_the_templates_and_taxonomies() {
        let r = godwit_protocol::samples::seizure_report();
        let body =
            Body { grading: Some("B2".parse().unwrap()), ..Body::new(Content::SeizureReport(r.clone())) };
        let e = event(&item("seizure_report"), &body, &r).unwrap();
        check_event(&e).unwrap();
        let objects = e["Event"]["Object"].as_array().unwrap();
        assert_eq!(objects.len(), 3, "the seizure and its two lines");
        let tags: Vec<&str> =
            e["Event"]["Tag"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(
            tags,
            [
                "tlp:amber",
                "admiralty-scale:source-reliability=\"b\"",
                "admiralty-scale:information-credibility=\"2\""
            ]
        );
        let text = e.to_string();
        for expected in ["176-12345675", "KENBO", "Loxodonta africana", "\"value\":\"38\"", "part-of"] {
            assert!(text.contains(expected), "{expected}");
        }
        // What MISP cannot say is refused, not dropped.
        let europol = Body { grading: Some("4x4:B3".parse().unwrap()), ..body.clone() };
        let err = event(&item("seizure_report"), &europol, &r).unwrap_err().to_string();
        assert!(err.contains("4x4:B3") && err.contains("no taxonomy"), "{err}");
        let handled = Body { handling: vec![godwit_protocol::content::HandlingCode::H1], ..body.clone() };
        assert!(event(&item("seizure_report"), &handled, &r).is_err());
        // A conformance check that can fail.
        let mut bad = e.clone();
        bad["Event"]["Object"][1]["Attribute"][0]["object_relation"] = json!("species");
        assert!(check_event(&bad).unwrap_err().contains("\"species\" is not in the template"));
        let mut bad = e.clone();
        bad["Event"]["Tag"][0]["name"] = json!("tlp:white");
        assert!(check_event(&bad).is_err(), "TLP 1.0's white is not TLP 2.0");
    }

    #[test]
    fn the_etis_form_gets_the_ivory_and_refuses_ivory_it_cannot_weigh() {
        let r = godwit_protocol::samples::seizure_report();
        let row = etis(&item("seizure_report"), &r).unwrap().unwrap();
        assert_eq!(
            (row.raw_pieces.as_str(), row.raw_kg.as_str(), row.worked_kg.as_str()),
            ("38", "412.5", "")
        );
        // Pangolin scales alone are not ETIS material.
        let mut scales = r.clone();
        scales.items.remove(0);
        assert!(etis(&item("seizure_report"), &scales).unwrap().is_none());
        // Ivory in grams without pieces: refused by name rather than dropped.
        let mut grams = r.clone();
        grams.items[0].ivory = None;
        grams.items[0].unit = Some("GRM".parse().unwrap());
        let e = etis(&item("seizure_report"), &grams).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("kg or pieces"), "{e}");
        // Weights add up exactly.
        let mut two = r.clone();
        let tenth = |kg: &str| {
            Some(godwit_protocol::content::IvoryPieces {
                raw_kg: Some(kg.parse().unwrap()),
                ..Default::default()
            })
        };
        two.items[0].ivory = tenth("0.1");
        let mut second = two.items[0].clone();
        second.ivory = tenth("0.2");
        two.items.push(second);
        assert_eq!(etis(&item("seizure_report"), &two).unwrap().unwrap().raw_kg, "0.3");
    }
}
