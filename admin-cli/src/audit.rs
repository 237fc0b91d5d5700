//! `godwit audit …`: the node's audit log — entries, checkpoints, proofs, witnesses, and an
//! export an inspector can check with independent tools.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use godwit_admin_api::audit::{AuditAnswer, AuditEntry, AuditRequest};
use godwit_admin_api::{Request, Response};
use serde_json::json;

use crate::node::{Client, EXIT_REFUSED, fail};

/// Entries asked for at once by `export`.
const EXPORT_PAGE: u32 = 10_000;

/// `godwit audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The last entries of the current generation.
    Tail {
        /// How many.
        #[arg(short, default_value_t = 20)]
        n: u32,
        /// Then keep printing every new journal entry, until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// One entry, with its exact leaf bytes.
    Show {
        /// Its leaf index.
        index: u64,
        /// The generation (default: the current one).
        #[arg(long)]
        generation: Option<u64>,
    },
    /// Rebuild the tree from the entries and check every checkpoint and cosignature; names the
    /// first bad index (exit 1 when anything is wrong).
    Verify,
    /// Inclusion and consistency proofs.
    Prove {
        /// Which proof.
        #[command(subcommand)]
        proof: ProveCommand,
    },
    /// Sign a checkpoint now (if entries were added) and show the newest, with its cosignatures.
    Checkpoint,
    /// Who cosigned this node's checkpoints, the logs this node witnesses, and alarms raised.
    Witnesses,
    /// JSON Lines: every entry (with its exact leaf bytes in hex), then every checkpoint as
    /// C2SP signed-note text with its cosignatures.
    Export,
    /// Start a new generation of the log after a damaged one was repaired; its first entry
    /// names the old generation's last good checkpoint.
    NewGeneration,
}

/// `godwit audit prove …`.
#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// That entry N is in the log (at the newest checkpoint's size unless --size).
    Inclusion {
        /// The leaf index.
        index: u64,
        /// The tree size.
        #[arg(long)]
        size: Option<u64>,
        /// The generation (default: the current one).
        #[arg(long)]
        generation: Option<u64>,
    },
    /// That the log of size A is a prefix of the log of size B.
    Consistency {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
        /// The generation (default: the current one).
        #[arg(long)]
        generation: Option<u64>,
    },
}

fn ask(client: &mut Client, req: AuditRequest) -> anyhow::Result<AuditAnswer> {
    match client.ask(&Request::Audit(req))? {
        Response::Audit(a) => Ok(*a),
        other => Err(fail(EXIT_REFUSED, format!("unexpected answer: {other:?}"))),
    }
}

fn entry_json(e: &AuditEntry) -> serde_json::Value {
    json!({
        "type": "entry",
        "generation": e.generation,
        "index": e.index,
        "seq": e.seq,
        "at_ms": e.at,
        "event": e.event,
        "leaf_hex": e.leaf_hex,
    })
}

/// Runs `godwit audit …` over `socket`.
///
/// # Errors
/// A failure with its exit code.
pub fn run(socket: &Path, json: bool, cmd: AuditCommand, out: &mut impl Write) -> anyhow::Result<()> {
    if let AuditCommand::Tail { follow: true, n } = cmd {
        return crate::node::run(
            socket,
            json,
            crate::node::NodeCommand::Journal(crate::node::JournalCommand::Tail { n, follow: true }),
            out,
        );
    }
    let mut client = Client::connect(socket)?;
    match cmd {
        AuditCommand::Tail { n, .. } => entries(ask(&mut client, AuditRequest::Tail { last: n })?, json, out),
        AuditCommand::Show { index, generation } => {
            let a = ask(&mut client, AuditRequest::Entries { generation, from: index, limit: 1 })?;
            match a {
                AuditAnswer::Entries(v) if v.first().is_some_and(|e| e.index == index) => {
                    let e = &v[0];
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&entry_json(e))?)?;
                    } else {
                        writeln!(
                            out,
                            "generation  {}\nindex       {}\njournal     {}",
                            e.generation, e.index, e.seq
                        )?;
                        writeln!(out, "at          {}", crate::inbox::utc(e.at))?;
                        writeln!(out, "event       {}\nleaf bytes  {}", e.event, e.leaf_hex)?;
                    }
                    Ok(())
                }
                _ => Err(fail(EXIT_REFUSED, format!("no entry {index} in that generation"))),
            }
        }
        AuditCommand::Verify => {
            let p = indicatif::ProgressBar::new_spinner()
                .with_message("rebuilding the audit log's tree and checking every checkpoint");
            p.enable_steady_tick(Duration::from_millis(120));
            let a = ask(&mut client, AuditRequest::Verify);
            p.finish_and_clear();
            let AuditAnswer::Verified(gens) = a? else {
                return Err(fail(EXIT_REFUSED, "unexpected answer".into()));
            };
            let mut bad = 0;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&gens)?)?;
            }
            for g in &gens {
                if !json {
                    writeln!(
                        out,
                        "generation {}: {} of {} entries, {} checkpoints, {} cosignatures",
                        g.generation, g.entries, g.size, g.checkpoints, g.cosignatures
                    )?;
                }
                if let Some((i, why)) = &g.first_bad {
                    bad += 1;
                    if !json {
                        writeln!(out, "  first bad index {i}: {why}")?;
                    }
                }
                for c in &g.bad_checkpoints {
                    bad += 1;
                    if !json {
                        writeln!(out, "  {c}")?;
                    }
                }
            }
            if bad > 0 {
                let first = gens.iter().find_map(|g| g.first_bad.as_ref().map(|(i, _)| (g.generation, *i)));
                let msg = match first {
                    Some((g, i)) => format!("the audit log is damaged: first bad index {i} (generation {g})"),
                    None => "the audit log's checkpoints do not hold".to_string(),
                };
                return Err(fail(EXIT_REFUSED, msg));
            }
            if !json {
                writeln!(out, "audit log sound: every entry, checkpoint and cosignature verified")?;
            }
            Ok(())
        }
        AuditCommand::Prove { proof } => {
            let req = match proof {
                ProveCommand::Inclusion { index, size, generation } => {
                    AuditRequest::ProveInclusion { generation, index, size }
                }
                ProveCommand::Consistency { old, new, generation } => {
                    AuditRequest::ProveConsistency { generation, old, new }
                }
            };
            let a = ask(&mut client, req)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&a)?)?;
                return Ok(());
            }
            match a {
                AuditAnswer::Inclusion { generation, index, size, leaf_hash, proof, root, checkpoint } => {
                    writeln!(out, "entry {index} of generation {generation} in the tree of {size} entries")?;
                    writeln!(out, "leaf hash  {leaf_hash}\nroot       {root}")?;
                    for (i, h) in proof.iter().enumerate() {
                        writeln!(out, "proof[{i}]   {h}")?;
                    }
                    if let Some(c) = checkpoint {
                        write!(out, "checkpoint\n{c}")?;
                    }
                }
                AuditAnswer::Consistency { generation, old, new, proof, roots } => {
                    writeln!(out, "generation {generation}: size {old} is a prefix of size {new}")?;
                    writeln!(out, "root {old}  {}\nroot {new}  {}", roots.0, roots.1)?;
                    for (i, h) in proof.iter().enumerate() {
                        writeln!(out, "proof[{i}]   {h}")?;
                    }
                }
                other => writeln!(out, "{other:?}")?,
            }
            Ok(())
        }
        AuditCommand::Checkpoint => match ask(&mut client, AuditRequest::Checkpoint)? {
            AuditAnswer::Checkpoint { note, cosigners, required, witnessed } => {
                if json {
                    let c: Vec<String> = cosigners.iter().map(ToString::to_string).collect();
                    let witnessed = witnessed.as_deref();
                    let v =
                        json!({ "note": note, "cosigners": c, "required": required, "witnessed": witnessed });
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    write!(out, "{note}")?;
                    let state =
                        if cosigners.len() >= required as usize { "witnessed" } else { "not yet witnessed" };
                    writeln!(out, "\n{} of {required} cosignatures needed: {state}", cosigners.len())?;
                }
                Ok(())
            }
            other => Err(fail(EXIT_REFUSED, format!("unexpected answer: {other:?}"))),
        },
        AuditCommand::Witnesses => {
            let a = ask(&mut client, AuditRequest::Witnesses)?;
            let AuditAnswer::Witnesses { cosigned_by, witnessing, alarms, damaged } = a else {
                return Err(fail(EXIT_REFUSED, "unexpected answer".into()));
            };
            if json {
                let v = json!({
                    "cosigned_by": cosigned_by.iter().map(|(n, s)| json!({ "node": n.to_string(), "size": s })).collect::<Vec<_>>(),
                    "witnessing": witnessing.iter().map(|w| json!({
                        "node": w.node.to_string(), "name": w.name, "generation": w.generation, "size": w.size,
                    })).collect::<Vec<_>>(),
                    "alarms": alarms.iter().map(|a| json!({
                        "node": a.node.to_string(), "kind": a.kind, "detail": a.detail,
                        "held": a.held, "presented": a.presented,
                    })).collect::<Vec<_>>(),
                    "damaged": damaged,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                return Ok(());
            }
            if let Some(d) = damaged {
                writeln!(out, "this node's log is damaged: {d}")?;
            }
            writeln!(out, "cosigned this node's log:")?;
            for (n, size) in &cosigned_by {
                writeln!(out, "  {n}  up to size {size}")?;
            }
            writeln!(out, "logs this node witnesses:")?;
            for w in &witnessing {
                writeln!(out, "  {}  {:<24} generation {} size {}", w.node, w.name, w.generation, w.size)?;
            }
            for a in &alarms {
                writeln!(out, "ALARM {} of {}: {}", a.kind, a.node, a.detail)?;
            }
            Ok(())
        }
        AuditCommand::Export => {
            // Every generation, a page at a time, then the checkpoints of each.
            let mut generation = 0u64;
            loop {
                let mut from = 0u64;
                loop {
                    let a = ask(
                        &mut client,
                        AuditRequest::Entries { generation: Some(generation), from, limit: EXPORT_PAGE },
                    );
                    let v = match a {
                        Ok(AuditAnswer::Entries(v)) => v,
                        Ok(_) => break,
                        Err(_) if from == 0 => return Ok(()),
                        Err(e) => return Err(e),
                    };
                    if v.is_empty() {
                        break;
                    }
                    from = v.last().map_or(from, |e| e.index + 1);
                    for e in &v {
                        writeln!(out, "{}", serde_json::to_string(&entry_json(e))?)?;
                    }
                    // A short page is the end as it was when asked: every request is journalled,
                    // so asking on would always find the entry of the last request.
                    if v.len() < EXPORT_PAGE as usize {
                        break;
                    }
                }
                if let Ok(AuditAnswer::Checkpoints(cps)) =
                    ask(&mut client, AuditRequest::Checkpoints { generation: Some(generation) })
                {
                    for c in cps {
                        let v = json!({ "type": "checkpoint", "generation": generation, "note": c });
                        writeln!(out, "{}", serde_json::to_string(&v)?)?;
                    }
                }
                generation += 1;
            }
        }
        AuditCommand::NewGeneration => match ask(&mut client, AuditRequest::NewGeneration)? {
            AuditAnswer::Generation(g) => {
                writeln!(out, "generation {g} of the audit log started")?;
                Ok(())
            }
            other => Err(fail(EXIT_REFUSED, format!("unexpected answer: {other:?}"))),
        },
    }
}

fn entries(a: AuditAnswer, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let AuditAnswer::Entries(v) = a else { return Err(fail(EXIT_REFUSED, "unexpected answer".into())) };
    if json {
        let v: Vec<_> = v.iter().map(entry_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for e in &v {
            writeln!(out, "{:>8}  {}  {}", e.index, crate::inbox::utc(e.at), e.event)?;
        }
    }
    Ok(())
}
