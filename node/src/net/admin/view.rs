//! What the admin API shows of an inbox message: opened with this node's keys, summed up in a
//! line, with the operators' mark.

use godwit_admin_api::InboxItem;
use godwit_protocol::content::{Body, Content, ReceiptStatus};
use godwit_protocol::envelope::{Envelope, Feed};
use godwit_protocol::ids::MessageId;
use godwit_protocol::relay::Mark;
use serde::Serialize;

use super::Ctx;

/// Opens a verified channel or direct message with the keys this node holds; `Err` says why
/// it cannot.
pub(super) fn open(ctx: &Ctx, e: &Envelope) -> Result<Body, String> {
    match &e.header().feed {
        Feed::Direct(_) => {
            // A panic elsewhere must not lock this node out of its own keys.
            let keys = ctx.shared.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            keys.open_direct(e, &ctx.shared.me).map_err(|err| format!("cannot open it: {err}"))
        }
        Feed::Channel(c) => {
            let keys = ctx.shared.epoch_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match keys.get(&c.id, c.epoch) {
                Some(k) => e.open_channel(k).map_err(|err| format!("cannot open it: {err}")),
                None => Err(format!("this node holds no key for channel {} epoch {}", c.id.short(), c.epoch)),
            }
        }
        Feed::Control(_) => Err("a control record, not a message".into()),
    }
}

/// A body for the caller: one addressed to named officers or roles only when the caller's
/// account (its OS uid, `[[accounts]]`) is mapped to one of them.
pub(super) fn readable(ctx: &Ctx, uid: Option<u32>, b: Body) -> Result<Body, String> {
    if b.addressees.is_empty() {
        return Ok(b);
    }
    let roles: Vec<&String> =
        ctx.accounts.iter().filter(|a| Some(a.uid) == uid).flat_map(|a| a.roles.iter()).collect();
    if b.addressees.iter().any(|want| roles.iter().any(|r| r.eq_ignore_ascii_case(want.trim()))) {
        return Ok(b);
    }
    let who = uid.map_or_else(|| "this account".to_string(), |u| format!("account uid {u}"));
    Err(format!(
        "addressed to {} only: {who} is not mapped to them ([[accounts]] in godwitd.toml)",
        b.addressees.join(", ")
    ))
}

/// A coded value in words: `dna_origin` → "dna origin".
fn words<T: Serialize>(v: &T) -> String {
    match ciborium::Value::serialized(v) {
        Ok(ciborium::Value::Text(t)) => t.replace('_', " "),
        _ => String::new(),
    }
}

/// One line saying what a message is about, and the message it answers, if any.
fn headline(content: &Content) -> (String, Option<MessageId>) {
    match content {
        Content::Warning(w) => (w.title.clone(), None),
        Content::Bulletin(b) => (b.title.clone(), None),
        Content::SeizureReport(r) => {
            let first = r.items.first().map_or_else(String::new, |i| {
                let unit = i.unit.map_or_else(String::new, |u| format!(" {}", u.as_str()));
                let term = i.term.description().to_lowercase();
                let qty = i
                    .quantity
                    .as_ref()
                    .map_or_else(|| "unknown amount of".to_string(), |q| format!("{q}{unit}"));
                format!(": {qty} {} ({term}) of {}", i.term.as_str(), i.taxon.scientific)
            });
            let more = if r.items.len() > 1 {
                format!(" and {} more lines", r.items.len() - 1)
            } else {
                String::new()
            };
            (format!("seizure {} at {} ({}){first}{more}", r.date, r.place.name, r.place.country), r.warning)
        }
        Content::Feedback(f) => {
            (format!("feedback on {}: {:?}", f.warning.short(), f.outcome).to_lowercase(), Some(f.warning))
        }
        Content::Receipt(r) => {
            let note = r.note.as_ref().map_or_else(String::new, |n| format!(": {n}"));
            (format!("{:?} {}{note}", r.status, r.message.short()).to_lowercase(), Some(r.message))
        }
        Content::Forward(f) => (format!("forward of {}", f.original.short()), Some(f.original)),
        Content::ChannelRequest(r) => {
            let what = if r.leave { "leaves" } else { "asks to join" };
            (format!("{what} channel {}: {}", r.channel.short(), r.note), None)
        }
        Content::Retraction(r) => (format!("retracts {}: {}", r.target.short(), r.reason), Some(r.target)),
        Content::Correction(c) => (format!("corrects {}: {}", c.target.short(), c.reason), Some(c.target)),
        Content::CaseFollowUp(c) => (
            format!("case of seizure {}: {}, {} arrested", c.seizure.short(), words(&c.outcome), c.arrests),
            Some(c.seizure),
        ),
        Content::ForensicSample(x) => {
            let state = if x.completed.is_some() { "result in" } else { "requested" };
            (
                format!("forensic {} of seizure {}: {state}", words(&x.analysis), x.seizure.short()),
                Some(x.seizure),
            )
        }
    }
}

/// What an inbox listing says of one message: its signed header (verified again here), what
/// it is about when this node can open it, and the operators' mark.
pub(super) fn item(
    ctx: &Ctx,
    uid: Option<u32>,
    id: MessageId,
    env: &[u8],
    mark: Option<&Mark>,
) -> Option<InboxItem> {
    let e = Envelope::verify(env).ok()?;
    item_opened(ctx, id, env, mark, open(ctx, &e).and_then(|b| readable(ctx, uid, b)))
}

/// [`item`], with the body already opened (or why not): a report this node authored is read
/// from the copy it kept.
pub(super) fn item_opened(
    ctx: &Ctx,
    id: MessageId,
    env: &[u8],
    mark: Option<&Mark>,
    opened: Result<Body, String>,
) -> Option<InboxItem> {
    let e = Envelope::verify(env).ok()?;
    let h = e.header();
    let administration = ctx
        .shared
        .directory
        .lock()
        .ok()
        .and_then(|d| d.get(&h.author).map(|x| x.cert.administration.clone()))
        .unwrap_or_default();
    let (mode, channel, channel_name) = match &h.feed {
        Feed::Channel(c) => {
            ("channel", Some(c.id.to_string()), ctx.shared.epoch_keys.lock().ok().and_then(|k| k.name(&c.id)))
        }
        Feed::Direct(_) => ("direct", None, None),
        Feed::Control(_) => ("control", None, None),
    };
    let (kind, title, refers_to) = match opened {
        Ok(body) => {
            let (title, refers) = headline(&body.content);
            (body.content.kind().to_string(), title, refers)
        }
        Err(why) => ("sealed".to_string(), why, None),
    };
    let status = match mark.map(|m| m.status) {
        Some(ReceiptStatus::Actioned) => "actioned",
        Some(ReceiptStatus::Read) => "read",
        _ => "new",
    };
    Some(InboxItem {
        id,
        author: h.author,
        administration,
        mode: mode.into(),
        channel,
        channel_name,
        marking: h.marking.as_str().into(),
        priority: format!("{:?}", h.priority).to_lowercase(),
        created_ms: h.created.as_millis(),
        kind,
        title,
        refers_to,
        status: status.into(),
    })
}
