//! The directory: every node's newest valid card, with what its certificate says (DESIGN §3).
//! Cards travel the network as control records; a card counts only with a certificate from the
//! network CA for the same NodeId, not revoked. Operators name nodes by NodeId, ISO country code
//! or administration name.

use std::collections::BTreeMap;

use godwit_protocol::Timestamp;
use godwit_protocol::identity::{NodeCard, NodeId};

use crate::certs::PeerCert;
use crate::tls::{self, TlsMaterial};

/// One node as the directory knows it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) card: NodeCard,
    pub(super) cert: PeerCert,
}

/// The directory.
#[derive(Debug, Default)]
pub(super) struct Directory {
    entries: BTreeMap<NodeId, Entry>,
}

impl Directory {
    /// Takes a signed card if it is valid at `now`, carries a valid certificate of its node, and
    /// is newer than the one held. Returns the node when the directory changed.
    ///
    /// # Errors
    /// Why the card is not taken.
    pub(super) fn admit(
        &mut self,
        record: &[u8],
        m: &TlsMaterial,
        now: Timestamp,
    ) -> Result<Option<NodeId>, String> {
        let card = NodeCard::verify(record, now).map_err(|e| e.to_string())?;
        if card.cert.is_empty() {
            return Err(format!("the card of {} carries no certificate", card.id.short()));
        }
        let cert = tls::check_node_cert(m, &card.cert)?;
        if cert.node_id != card.id {
            return Err(format!(
                "the card of {} carries the certificate of {}",
                card.id.short(),
                cert.node_id.short()
            ));
        }
        if self.entries.get(&card.id).is_some_and(|e| e.card.not_before >= card.not_before) {
            return Ok(None);
        }
        let id = card.id;
        self.entries.insert(id, Entry { card, cert });
        Ok(Some(id))
    }

    /// Drops the entries whose certificate serial is revoked.
    pub(super) fn revoke(&mut self, serials: &[Vec<u8>]) -> Vec<NodeId> {
        let gone: Vec<NodeId> = self
            .entries
            .iter()
            .filter(|(_, e)| serials.contains(&e.cert.serial))
            .map(|(id, _)| *id)
            .collect();
        self.entries.retain(|_, e| !serials.contains(&e.cert.serial));
        gone
    }

    /// Every entry, by NodeId.
    pub(super) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// A node's entry.
    pub(super) fn get(&self, id: &NodeId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// The nodes a name stands for: a NodeId, an ISO 3166 country code (every node of that
    /// country) or an administration's name (case-insensitive).
    ///
    /// # Errors
    /// A message naming the unknown name.
    pub(super) fn find(&self, name: &str) -> Result<Vec<&Entry>, String> {
        let name = name.trim();
        if let Ok(id) = name.parse::<NodeId>() {
            return self.get(&id).map(|e| vec![e]).ok_or_else(|| format!("no card of node {id} is known"));
        }
        let found: Vec<&Entry> = if name.len() == 2 && name.bytes().all(|b| b.is_ascii_alphabetic()) {
            let code = name.to_ascii_uppercase();
            self.entries.values().filter(|e| e.cert.country.as_deref() == Some(code.as_str())).collect()
        } else {
            self.entries.values().filter(|e| e.cert.administration.eq_ignore_ascii_case(name)).collect()
        };
        if found.is_empty() {
            return Err(format!(
                "no node called {name:?} is known (a NodeId, an ISO 3166 country code such as KE, or an administration's name; see godwit directory)"
            ));
        }
        Ok(found)
    }
}
