//! The demo's operators: every step of the story is a request to a node's admin socket, the same
//! API and path the `godwit` tool uses.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use godwit_admin_api::{
    self as api, API_VERSION, DirectoryView, Hello, InboxItem, MAX_RESPONSE, MessageView, Request, Response,
    Welcome,
};
use godwit_protocol::content::Body;
use godwit_protocol::ids::MessageId;

/// One node's operator.
#[derive(Debug, Clone)]
pub struct Operator {
    socket: PathBuf,
}

impl Operator {
    /// The operator of the node whose data directory is `dir`.
    pub fn of(dir: &std::path::Path) -> Operator {
        Operator { socket: dir.join(api::SOCKET_NAME) }
    }

    /// Sends one request over a new connection, as `godwit` does; a refusal is an error.
    ///
    /// # Errors
    /// The node cannot be reached, or it refused.
    pub async fn ask(&self, req: Request) -> Result<Response> {
        let socket = self.socket.clone();
        tokio::task::spawn_blocking(move || -> Result<Response> {
            let mut s = std::os::unix::net::UnixStream::connect(&socket)
                .with_context(|| format!("cannot reach {}", socket.display()))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.set_write_timeout(Some(Duration::from_secs(30)))?;
            api::write(&mut s, &Hello { version: API_VERSION })?;
            if let Welcome::VersionMismatch { node_speaks } = api::read::<Welcome>(&mut s, MAX_RESPONSE)? {
                bail!("the node speaks admin API {node_speaks}");
            }
            api::write(&mut s, &req)?;
            match api::read::<Response>(&mut s, MAX_RESPONSE)? {
                Response::Refused(r) => bail!("the node refused: {} ({})", r.message, r.code),
                r => Ok(r),
            }
        })
        .await
        .context("the operator's task failed")?
    }

    /// `godwit send … --channel`.
    ///
    /// # Errors
    /// As [`Operator::ask`].
    pub async fn send_channel(
        &self,
        channel: &str,
        priority: &str,
        marking: &str,
        body: &Body,
    ) -> Result<MessageId> {
        let req = Request::SendChannel {
            channel: channel.into(),
            priority: priority.into(),
            marking: marking.into(),
            ttl_hours: 24 * 30,
            body: body.encode(),
            personal: None,
        };
        match self.ask(req).await? {
            Response::Sent { id, .. } => Ok(id),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit channels create|admit|remove|close|rekey`: the channel's new epoch.
    ///
    /// # Errors
    /// As [`Operator::ask`].
    pub async fn change_channel(&self, change: api::ChannelChange) -> Result<(String, u64)> {
        match self.ask(Request::ChangeChannel(change)).await? {
            Response::ChannelChanged { channel, epoch } => Ok((channel, epoch)),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit receipts ID`.
    ///
    /// # Errors
    /// As [`Operator::ask`].
    pub async fn receipts(&self, id: MessageId) -> Result<api::ReceiptsView> {
        match self.ask(Request::Receipts { id: id.to_string() }).await? {
            Response::Receipts(r) => Ok(r),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit send retract ID --reason …`: the retraction's id.
    ///
    /// # Errors
    /// As [`Operator::ask`].
    pub async fn retract(&self, id: MessageId, reason: &str) -> Result<MessageId> {
        let req = Request::Withdraw { id: id.to_string(), reason: reason.into(), corrected: None };
        match self.ask(req).await? {
            Response::Sent { id, .. } => Ok(id),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit channels show NAME`.
    ///
    /// # Errors
    /// As [`Operator::ask`]; no channel of that name.
    pub async fn channel(&self, name: &str) -> Result<api::ChannelView> {
        match self.ask(Request::Channels).await? {
            Response::Channels(list) => {
                list.into_iter().find(|c| c.name == name).with_context(|| format!("no channel {name:?} here"))
            }
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit send … --to …`.
    ///
    /// # Errors
    /// As [`Operator::ask`].
    pub async fn send_direct(
        &self,
        to: &[&str],
        priority: &str,
        marking: &str,
        body: &Body,
    ) -> Result<MessageId> {
        let req = Request::SendDirect {
            to: to.iter().map(|s| (*s).to_string()).collect(),
            priority: priority.into(),
            marking: marking.into(),
            ttl_hours: 24 * 30,
            body: body.encode(),
            personal: None,
        };
        match self.ask(req).await? {
            Response::Sent { id, .. } => Ok(id),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit inbox ack`: the receipt's id.
    ///
    /// # Errors
    /// As [`Operator::ask`].
    pub async fn ack(&self, id: MessageId, note: &str) -> Result<Option<MessageId>> {
        let req = Request::Mark { id: id.to_string(), actioned: false, note: Some(note.into()) };
        match self.ask(req).await? {
            Response::Marked { receipt, .. } => Ok(receipt),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit inbox`.
    ///
    /// # Errors
    /// As [`Operator::ask`].
    pub async fn inbox(&self) -> Result<Vec<InboxItem>> {
        match self.ask(Request::Inbox).await? {
            Response::Inbox(items) => Ok(items),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit inbox show`: the message and its opened body.
    ///
    /// # Errors
    /// As [`Operator::ask`], or a body that does not open or decode.
    pub async fn show(&self, id: MessageId) -> Result<(MessageView, Body)> {
        match self.ask(Request::Show { id: id.to_string() }).await? {
            Response::Message(m) => {
                if let Some(why) = &m.unopened {
                    bail!("{why}");
                }
                let body = Body::decode(&m.body).context("the body does not decode")?;
                Ok((*m, body))
            }
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// `godwit directory`.
    ///
    /// # Errors
    /// As [`Operator::ask`].
    pub async fn directory(&self) -> Result<Vec<DirectoryView>> {
        match self.ask(Request::Directory { name: None }).await? {
            Response::Directory(d) => Ok(d),
            other => bail!("unexpected answer {other:?}"),
        }
    }
}
