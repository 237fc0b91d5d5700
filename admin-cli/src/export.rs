//! `godwit inbox export`: the seizure reports of the inbox for an analyst's spreadsheet, a MISP
//! instance or the ETIS ivory form.

use std::io::Write;
use std::path::Path;

use godwit_admin_api::{self as api, Request, Response};
use godwit_protocol::content::{Body, Content, Tlp};

use crate::node::{Client, EXIT_REFUSED, ExportFormat, fail};

/// The most of this node's own reports one answer holds.
const OWN_PAGE: usize = 128;

/// The most messages one inbox listing returns (the node's newest).
const LISTING_MAX: usize = 1_000;

/// Every seizure report of the inbox, with the corrections their authors sent applied (the
/// correction's content, grading and handling, and the stricter of the two markings) and those
/// they retracted left out; forwards are other administrations' copies, not reports: left out
/// too.
///
/// # Errors
/// A [`crate::node::Failure`].
pub fn export(
    socket: &Path,
    (format, json): (ExportFormat, bool),
    (since, own): (Option<u64>, bool),
    file: Option<&Path>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if let Some(f) = file.filter(|f| f.exists()) {
        return Err(fail(EXIT_REFUSED, format!("{} exists: refusing to overwrite it", f.display())));
    }
    let mut client = Client::connect(socket)?;
    let (reports, amendments) =
        if own { own_reports(&mut client, since)? } else { inbox_reports(&mut client, since)? };
    // Retractions and corrections by a report's own author, applied in the order received.
    let mut opened = reports;
    for (a, body) in amendments {
        let Body { content, grading, handling, addressees, statements, handling_note } = body;
        match content {
            Content::Retraction(r) => opened.retain(|(i, _)| i.id != r.target || i.author != a.author),
            Content::Correction(c) => {
                if let (Some((item, body)), Content::SeizureReport(_)) = (
                    opened.iter_mut().find(|(i, _)| i.id == c.target && i.author == a.author),
                    c.corrected.as_ref(),
                ) {
                    *body = Body {
                        content: *c.corrected,
                        grading,
                        handling,
                        addressees,
                        statements,
                        handling_note,
                    };
                    item.marking = stricter(&item.marking, &a.marking);
                }
            }
            _ => {}
        }
    }
    let mut buf = Vec::new();
    let written = match format {
        ExportFormat::Rows => {
            let mut rows = Vec::new();
            for (i, body) in &opened {
                if let Content::SeizureReport(r) = &body.content {
                    rows.extend(crate::inbox::rows(i, r));
                }
            }
            crate::inbox::write_rows(&rows, !json, &mut buf)?;
            if !json {
                buf = defuse(&buf)?;
            }
            format!("{} rows", rows.len())
        }
        ExportFormat::Misp => {
            let mut events = Vec::new();
            for (i, body) in &opened {
                if let Content::SeizureReport(r) = &body.content {
                    events
                        .push(crate::misp::event(i, body, r).map_err(|e| fail(EXIT_REFUSED, e.to_string()))?);
                }
            }
            buf.extend_from_slice(serde_json::to_string_pretty(&events)?.as_bytes());
            buf.push(b'\n');
            format!("{} MISP events", events.len())
        }
        ExportFormat::Etis => {
            let mut w = csv::Writer::from_writer(&mut buf);
            let mut n = 0;
            for (i, body) in &opened {
                if let Content::SeizureReport(r) = &body.content {
                    if let Some(row) =
                        crate::misp::etis(i, r).map_err(|e| fail(EXIT_REFUSED, e.to_string()))?
                    {
                        w.serialize(row)?;
                        n += 1;
                    }
                }
            }
            w.flush()?;
            drop(w);
            buf = defuse(&buf)?;
            format!("{n} ETIS rows")
        }
    };
    match file {
        Some(f) => {
            // Readable by its owner only: what it holds is marked, often TLP:AMBER or stricter.
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(f)
                .and_then(|mut w| w.write_all(&buf))
                .map_err(|e| fail(EXIT_REFUSED, format!("cannot write {}: {e}", f.display())))?;
            writeln!(out, "{written} written to {}", f.display())?;
        }
        None => out.write_all(&buf)?,
    }
    Ok(())
}

/// Reports and the amendments that may apply to them (`(item, body)` each, in the order received).
type Gathered = (Vec<(api::InboxItem, Body)>, Vec<(api::InboxItem, Body)>);

/// The seizure reports of the inbox and their authors' corrections and retractions, opened.
fn inbox_reports(client: &mut Client, since: Option<u64>) -> anyhow::Result<Gathered> {
    let Response::Inbox(items) = client.ask(&Request::Inbox)? else {
        return Err(fail(EXIT_REFUSED, "the node answered something else than its inbox".into()));
    };
    if items.len() >= LISTING_MAX {
        eprintln!(
            "godwit: the inbox listing holds the newest {LISTING_MAX} messages: older seizure reports are not in this export"
        );
    }
    let reports: Vec<&api::InboxItem> = items
        .iter()
        .filter(|i| i.kind == "seizure_report" && since.is_none_or(|t| i.created_ms >= t))
        .collect();
    let amendments: Vec<&api::InboxItem> = items
        .iter()
        .filter(|i| matches!(i.kind.as_str(), "retraction" | "correction"))
        .filter(|i| i.refers_to.is_some_and(|t| reports.iter().any(|r| r.id == t && r.author == i.author)))
        .collect();
    // Progress on a terminal only (indicatif draws nothing when standard error is not one).
    let progress = indicatif::ProgressBar::new((reports.len() + amendments.len()) as u64)
        .with_message("seizure reports");
    let mut withheld = 0;
    let mut open =
        |list: Vec<&api::InboxItem>, withheld: &mut usize| -> anyhow::Result<Vec<(api::InboxItem, Body)>> {
            let mut opened = Vec::new();
            for i in list {
                if let Response::Message(m) = client.ask(&Request::Show { id: i.id.to_string() })? {
                    match crate::inbox::decode(&m.body) {
                        Ok(body) if m.unopened.is_none() => opened.push((i.clone(), body)),
                        _ => *withheld += 1,
                    }
                }
                progress.inc(1);
            }
            Ok(opened)
        };
    let reports = open(reports, &mut withheld)?;
    if withheld > 0 {
        eprintln!("godwit: {withheld} seizure reports this account may not read are not in this export");
    }
    let amendments = open(amendments, &mut 0)?;
    progress.finish_and_clear();
    Ok((reports, amendments))
}

/// This node's own seizure reports and its corrections and retractions of them, from the copies
/// it kept: the Party's own seizures, for its CITES annual illegal trade report.
fn own_reports(client: &mut Client, since: Option<u64>) -> anyhow::Result<Gathered> {
    let mut views = Vec::new();
    loop {
        let skip = u32::try_from(views.len()).unwrap_or(u32::MAX);
        let Response::OwnReports(page) = client.ask(&Request::OwnReports { skip })? else {
            return Err(fail(EXIT_REFUSED, "the node answered something else than its own reports".into()));
        };
        let last = page.len() < OWN_PAGE;
        views.extend(page);
        if last {
            break;
        }
    }
    let (mut reports, mut amendments, mut withheld) = (Vec::new(), Vec::new(), 0);
    for v in views {
        let body = match crate::inbox::decode(&v.body) {
            Ok(b) if v.unopened.is_none() => b,
            _ => {
                withheld += 1;
                continue;
            }
        };
        match v.item.kind.as_str() {
            "seizure_report" if since.is_none_or(|t| v.item.created_ms >= t) => reports.push((v.item, body)),
            "retraction" | "correction" => amendments.push((v.item, body)),
            _ => {}
        }
    }
    if withheld > 0 {
        eprintln!(
            "godwit: {withheld} of this node's reports could not be read from the copies it kept and are not in this export"
        );
    }
    Ok((reports, amendments))
}

/// The stricter of two TLP labels as the node lists them (`TLP:AMBER`).
fn stricter(a: &str, b: &str) -> String {
    match (a.parse::<Tlp>(), b.parse::<Tlp>()) {
        (Ok(x), Ok(y)) => x.min(y).as_str().to_string(),
        _ => Tlp::Red.as_str().to_string(),
    }
}

/// A CSV made safe for spreadsheets: a cell that begins with `=`, `+`, `-` or `@` would be read
/// as a formula, so it gets a leading `'`.
fn defuse(csv_bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(csv_bytes);
    let mut out = Vec::new();
    {
        let mut w = csv::Writer::from_writer(&mut out);
        for rec in r.records() {
            let rec = rec?;
            let cells: Vec<String> = rec
                .iter()
                .map(|c| {
                    let formula =
                        c.starts_with(['=', '+', '@']) || (c.starts_with('-') && c.parse::<f64>().is_err());
                    if formula { format!("'{c}") } else { c.to_string() }
                })
                .collect();
            w.write_record(&cells)?;
        }
        w.flush()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cells_that_a_spreadsheet_would_run_as_formulas_are_defused() {
        let csv = b"a,b,c,d\n=HYPERLINK(\"x\"),+1+2,-1.5,@SUM(A1)\n";
        let out = String::from_utf8(defuse(csv).unwrap()).unwrap();
        assert_eq!(out, "a,b,c,d\n\"'=HYPERLINK(\"\"x\"\")\",'+1+2,-1.5,'@SUM(A1)\n");
    }

    #[test]
    fn the_stricter_marking_wins() {
        assert_eq!(stricter("TLP:GREEN", "TLP:AMBER"), "TLP:AMBER");
        assert_eq!(stricter("TLP:AMBER+STRICT", "TLP:CLEAR"), "TLP:AMBER+STRICT");
        assert_eq!(stricter("nonsense", "TLP:CLEAR"), "TLP:RED", "unknown: the strictest");
    }
}
