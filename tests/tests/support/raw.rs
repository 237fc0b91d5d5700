//! A raw link client: a node certificate and QUIC, speaking link frames by hand, as a hostile
//! (or buggy) member would. It reads every frame the other side sends, on every stream.

use godwit_node::tls::{self, NetLimits};
use godwit_protocol::Timestamp;
use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::{EncryptionKey, IdentityKey, NodeId};
use godwit_protocol::ids::MessageId;
use godwit_protocol::message::{Audience, Draft, SealedMessage, seal};
use godwit_protocol::samples;
use godwit_protocol::wire::{Frame, Hello, Msg};
use tokio::sync::mpsc;

use super::network::{DAY, Net, WAIT};

/// A raw client connected as node `me` to node `to`.
pub struct Raw {
    pub conn: quinn::Connection,
    pub stream: quinn::SendStream,
    pub frames: mpsc::UnboundedReceiver<(usize, Frame)>,
    key: IdentityKey,
    _endpoint: quinn::Endpoint,
}

impl Raw {
    /// Connects with node `me`'s certificate and opens its urgent stream; sends no Hello.
    pub async fn connect(net: &Net, me: usize, to: usize) -> Raw {
        let client = tls::client_config(&net.material(me), &NetLimits::default()).unwrap();
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let name = godwit_node::certs::dns_name(&net.members[to].id());
        let conn = ep.connect_with(client, net.members[to].addr(), &name).unwrap().await.unwrap();
        let mut stream = conn.open_uni().await.unwrap();
        stream.write_all(&[0x67, 0]).await.unwrap();
        let (tx, frames) = mpsc::unbounded_channel();
        let reader = conn.clone();
        tokio::spawn(async move {
            while let Ok(mut r) = reader.accept_uni().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut pre = [0u8; 2];
                    if r.read_exact(&mut pre).await.is_err() {
                        return;
                    }
                    loop {
                        let mut len = [0u8; 4];
                        if r.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                        if r.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let _ = tx.send((body.len(), Frame::decode(&body).unwrap()));
                    }
                });
            }
        });
        let key = IdentityKey::from_seed(&net.members[me].seed);
        Raw { conn, stream, frames, key, _endpoint: ep }
    }

    /// Connects with node `me`'s certificate and then does nothing: it grants the other side no
    /// stream credit, so the other side cannot complete its first exchange.
    pub async fn connect_silent(net: &Net, me: usize, to: usize) -> (quinn::Endpoint, quinn::Connection) {
        let mut client = tls::client_config(&net.material(me), &NetLimits::default()).unwrap();
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_uni_streams(0u8.into());
        client.transport_config(std::sync::Arc::new(t));
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let name = godwit_node::certs::dns_name(&net.members[to].id());
        let conn = ep.connect_with(client, net.members[to].addr(), &name).unwrap().await.unwrap();
        (ep, conn)
    }

    /// Connects and says Hello.
    pub async fn hello(net: &Net, me: usize, to: usize, recovering: bool) -> Raw {
        let mut raw = Raw::connect(net, me, to).await;
        let me = raw.key.node_id();
        raw.send(&Frame::Reach(vec![me])).await;
        raw.send(&Frame::Hello(Hello { v: 1, recovering })).await;
        raw
    }

    /// Sends one frame.
    pub async fn send(&mut self, f: &Frame) {
        self.send_bytes(&f.encode()).await;
    }

    /// Sends one frame body as given.
    pub async fn send_bytes(&mut self, body: &[u8]) {
        self.stream.write_all(&(body.len() as u32).to_be_bytes()).await.unwrap();
        self.stream.write_all(body).await.unwrap();
    }

    /// Sends one frame; false once the connection is gone (e.g. the other side closed it in the
    /// middle of a flood).
    pub async fn try_send(&mut self, f: &Frame) -> bool {
        let body = f.encode();
        self.stream.write_all(&(body.len() as u32).to_be_bytes()).await.is_ok()
            && self.stream.write_all(&body).await.is_ok()
    }

    /// Sends an envelope at hop `hop`.
    pub async fn send_msg(&mut self, env: &[u8], hop: u8) {
        self.send(&Frame::Msg(Msg { env: env.to_vec(), hop })).await;
    }

    /// A routine channel message of this client's own feed at `seq`.
    pub fn channel_msg(&self, net: &Net, seq: u64, prev: Option<MessageId>) -> SealedMessage {
        let body = Body::new(Content::Warning(samples::warning()));
        let now = godwit_node::net::now();
        let draft = Draft {
            audience: Audience::Channel { id: net.channel, epoch: 1, key: &net.epoch_key },
            seq,
            prev,
            created: now,
            expires: Timestamp(now.as_millis() + DAY),
            priority: Priority::Routine,
            marking: Tlp::Green,
            body: &body,
            personal: None,
        };
        seal(&mut rand_core::OsRng, &self.key, &draft).unwrap()
    }

    /// A direct message of this client's own feed to `to` (sealed to throwaway keys).
    pub fn direct_msg(&self, to: &[NodeId]) -> SealedMessage {
        let body = Body::new(Content::SeizureReport(samples::seizure_report()));
        let keys: Vec<_> =
            to.iter().map(|n| (*n, EncryptionKey::generate(&mut rand_core::OsRng).public())).collect();
        let now = godwit_node::net::now();
        let draft = Draft {
            audience: Audience::Direct(&keys),
            seq: 1,
            prev: None,
            created: now,
            expires: Timestamp(now.as_millis() + DAY),
            priority: Priority::Routine,
            marking: Tlp::Red,
            body: &body,
            personal: None,
        };
        seal(&mut rand_core::OsRng, &self.key, &draft).unwrap()
    }

    /// The next frame matching `pred` (bounded wait); panics if the connection ends first.
    pub async fn next(&mut self, what: &str, mut pred: impl FnMut(&Frame) -> bool) -> Frame {
        let fut = async {
            loop {
                match self.frames.recv().await {
                    Some((_, f)) if pred(&f) => return f,
                    Some(_) => {}
                    None => panic!("connection ended while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }
}
