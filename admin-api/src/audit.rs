//! `godwit audit`: the node's audit log — entries, checkpoints, proofs and witnesses.

use serde::{Deserialize, Serialize};

use godwit_protocol::identity::NodeId;

/// A request about the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditRequest {
    /// The last `last` entries of the current generation.
    Tail {
        /// How many.
        last: u32,
    },
    /// Entries `from..` of a generation (at most `limit`; `godwit audit show` and `export`).
    Entries {
        /// The generation (`None`: the current one).
        generation: Option<u64>,
        /// The first leaf index.
        from: u64,
        /// How many at most.
        limit: u32,
    },
    /// Rebuild every generation's tree from its entries and check every checkpoint.
    Verify,
    /// The inclusion proof of leaf `index` in the newest checkpoint (or the tree of `size`).
    ProveInclusion {
        /// The generation (`None`: the current one).
        generation: Option<u64>,
        /// The leaf.
        index: u64,
        /// The tree size (`None`: the newest checkpoint's).
        size: Option<u64>,
    },
    /// The consistency proof between two sizes.
    ProveConsistency {
        /// The generation (`None`: the current one).
        generation: Option<u64>,
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// Sign a checkpoint now (if entries were added since the last) and show the newest.
    Checkpoint,
    /// Who cosigned this node's checkpoints, the logs this node witnesses, and alarms.
    Witnesses,
    /// Every checkpoint of a generation (note text, with cosignatures).
    Checkpoints {
        /// The generation (`None`: the current one).
        generation: Option<u64>,
    },
    /// Start a new generation after the operator repaired a damaged log (mutating).
    NewGeneration,
}

/// An audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Its generation.
    pub generation: u64,
    /// Its leaf index in the generation.
    pub index: u64,
    /// Its journal position.
    pub seq: u64,
    /// When it was written (ms since the epoch; 0 for entries of older versions).
    pub at: u64,
    /// The event, as text (ids, reasons, counts — never message bodies).
    pub event: String,
    /// The exact leaf bytes (the leaf hash is SHA-256(0x00 ‖ these)), hex.
    pub leaf_hex: String,
}

/// What `verify` found in one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationCheck {
    /// The generation.
    pub generation: u64,
    /// Entries read.
    pub entries: u64,
    /// Entries the node records for it.
    pub size: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Valid cosignatures on them.
    pub cosignatures: u64,
    /// The first bad index and what is wrong with it.
    pub first_bad: Option<(u64, String)>,
    /// Checkpoints that do not hold.
    pub bad_checkpoints: Vec<String>,
}

/// A log this node witnesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedLog {
    /// The log's node.
    pub node: NodeId,
    /// Its administration, if known.
    pub name: String,
    /// The generation and size of the newest checkpoint held.
    pub generation: u64,
    /// Size.
    pub size: u64,
}

/// An alarm raised by this node's witness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditAlarmView {
    /// The log's node.
    pub node: NodeId,
    /// `rollback`, `split_view` or `inconsistent`.
    pub kind: String,
    /// Sizes and roots, in words.
    pub detail: String,
    /// The checkpoint held (note text).
    pub held: String,
    /// The checkpoint presented (note text).
    pub presented: String,
}

/// An answer about the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAnswer {
    /// Entries, oldest first.
    Entries(Vec<AuditEntry>),
    /// What verify found, per generation.
    Verified(Vec<GenerationCheck>),
    /// An inclusion proof.
    Inclusion {
        /// Generation.
        generation: u64,
        /// The leaf.
        index: u64,
        /// The tree size.
        size: u64,
        /// The leaf hash, hex.
        leaf_hash: String,
        /// The proof's hashes, hex, leaf side first.
        proof: Vec<String>,
        /// The root at that size, hex.
        root: String,
        /// The checkpoint of that size, if one was signed.
        checkpoint: Option<String>,
    },
    /// A consistency proof.
    Consistency {
        /// Generation.
        generation: u64,
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
        /// The proof's hashes, hex.
        proof: Vec<String>,
        /// The roots at both sizes, hex.
        roots: (String, String),
    },
    /// The newest checkpoint.
    Checkpoint {
        /// Its note (C2SP signed note, with the cosignatures collected).
        note: String,
        /// The NodeIds whose cosignatures it carries.
        cosigners: Vec<NodeId>,
        /// Cosignatures needed for a checkpoint to count.
        required: u32,
        /// The newest checkpoint with at least `required` cosignatures, if any.
        witnessed: Option<String>,
    },
    /// Witnessing, both ways.
    Witnesses {
        /// Per peer: the newest size of this node's log it cosigned.
        cosigned_by: Vec<(NodeId, u64)>,
        /// Logs this node witnesses.
        witnessing: Vec<WitnessedLog>,
        /// Alarms raised (newest last).
        alarms: Vec<AuditAlarmView>,
        /// Why this node signs no checkpoints, if its log is damaged.
        damaged: Option<String>,
    },
    /// Checkpoints (note texts), oldest first.
    Checkpoints(Vec<String>),
    /// A new generation started.
    Generation(u64),
}
