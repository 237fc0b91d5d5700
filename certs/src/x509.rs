//! Certificates: the network CA, node certificates whose key *is* the node's Ed25519 identity,
//! and revocation lists.
//!
//! A node certificate binds (DESIGN §3): the NodeId (its public key), a DNS name derived from the
//! NodeId (`<nodeid>.godwit.invalid`, the TLS server name peers dial), the administration name
//! (CN and O), its ISO 3166 country (C), its region (OU) and its role, as a URI SAN
//! `urn:godwit:role:<member|hub|authority>`.

use godwit_protocol::content::Country;
use godwit_protocol::identity::Role;
use godwit_protocol::identity::{IdentityKey, NodeId};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// Suffix of the DNS name derived from a NodeId (`.invalid` is reserved: never resolvable).
pub const DNS_SUFFIX: &str = ".godwit.invalid";
const ROLE_URN: &str = "urn:godwit:role:";

/// Why a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// rcgen refused to build it.
    #[error("cannot build certificate: {0}")]
    Build(#[from] rcgen::Error),
    /// The certificate is not a Godwit node certificate.
    #[error("not a Godwit node certificate: {0}")]
    NotGodwit(String),
    /// A timestamp is out of range.
    #[error("time out of range: {0}")]
    Time(String),
}

/// What the network authority vouches for in a node certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAttrs {
    /// The administration, e.g. "Kenya Revenue Authority".
    pub administration: String,
    /// Its country.
    pub country: Country,
    /// Its region, e.g. "ESA".
    pub region: String,
    /// Its role.
    pub role: Role,
}

/// A node certificate as issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// DER.
    pub der: CertificateDer<'static>,
    /// PEM.
    pub pem: String,
    /// Serial number.
    pub serial: u64,
}

/// What a verified peer certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// The NodeId (the certificate's Ed25519 key).
    pub node_id: NodeId,
    /// The role.
    pub role: Role,
    /// The administration.
    pub administration: String,
    /// The country, if present.
    pub country: Option<String>,
    /// The region (OU), if present: a hub vouches only for members of its own region.
    pub region: Option<String>,
    /// Serial number (big-endian, no leading zeros; see [`serial_bytes`]).
    pub serial: Vec<u8>,
    /// End of validity, in seconds since the epoch.
    pub not_after: i64,
    /// The certificate itself (DER).
    pub der: Vec<u8>,
}

/// The network certificate authority (in memory).
pub struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authority(..)")
    }
}

impl Authority {
    /// A new CA named `name`, valid between the two times (ms since the epoch), with a fresh key.
    ///
    /// # Errors
    /// [`CertError`].
    pub fn new(name: &str, not_before_ms: u64, not_after_ms: u64) -> Result<Self, CertError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        Self::with_key(key, name, not_before_ms, not_after_ms)
    }

    /// The CA whose Ed25519 key is `key`, named `name`, valid between the two times: the same
    /// inputs give the same certificate, byte for byte (Ed25519 signatures are deterministic and
    /// the serial number is fixed), so a CA kept as its key and these three values is reloaded
    /// exactly — and a stored CA certificate can be checked against them.
    ///
    /// # Errors
    /// [`CertError`].
    pub fn from_key(
        key: &IdentityKey,
        name: &str,
        not_before_ms: u64,
        not_after_ms: u64,
    ) -> Result<Self, CertError> {
        let key = KeyPair::try_from(&pkcs8(key))?;
        Self::with_key(key, name, not_before_ms, not_after_ms)
    }

    fn with_key(key: KeyPair, name: &str, not_before_ms: u64, not_after_ms: u64) -> Result<Self, CertError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.serial_number = Some(SerialNumber::from(1u64));
        p.distinguished_name.push(DnType::CommonName, name);
        p.distinguished_name.push(DnType::OrganizationName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        p.not_before = time_of(not_before_ms)?;
        p.not_after = time_of(not_after_ms)?;
        p.key_identifier_method = KeyIdMethod::Sha256;
        let cert = p.self_signed(&key)?;
        Ok(Authority { cert, key })
    }

    /// The CA certificate (the trust anchor nodes configure).
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Issues a node certificate for `identity` with `attrs`.
    ///
    /// # Errors
    /// [`CertError`].
    pub fn issue(
        &self,
        identity: &IdentityKey,
        attrs: &NodeAttrs,
        serial: u64,
        not_before_ms: u64,
        not_after_ms: u64,
    ) -> Result<Issued, CertError> {
        self.issue_for(&identity.node_id(), attrs, serial, not_before_ms, not_after_ms)
    }

    /// Issues a node certificate for the node `id` (its public key is all the CA needs: the
    /// node's private key never leaves it).
    ///
    /// # Errors
    /// [`CertError`].
    pub fn issue_for(
        &self,
        id: &NodeId,
        attrs: &NodeAttrs,
        serial: u64,
        not_before_ms: u64,
        not_after_ms: u64,
    ) -> Result<Issued, CertError> {
        let node_key = NodePublicKey(*id.as_bytes());
        let id = *id;
        let mut p = CertificateParams::new(vec![dns_name(&id)])?;
        p.subject_alt_names.push(SanType::URI(format!("{ROLE_URN}{}", role_name(attrs.role)).try_into()?));
        p.distinguished_name.push(DnType::CommonName, attrs.administration.as_str());
        p.distinguished_name.push(DnType::OrganizationName, attrs.administration.as_str());
        p.distinguished_name.push(DnType::CountryName, attrs.country.as_str());
        p.distinguished_name.push(DnType::OrganizationalUnitName, attrs.region.as_str());
        p.serial_number = Some(SerialNumber::from(serial));
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        p.not_before = time_of(not_before_ms)?;
        p.not_after = time_of(not_after_ms)?;
        let cert = p.signed_by(&node_key, &self.cert, &self.key)?;
        Ok(Issued { der: cert.der().clone(), pem: cert.pem(), serial })
    }

    /// A revocation list numbered `number` revoking `serials`, valid from `this_update_ms` to
    /// `next_update_ms`.
    ///
    /// # Errors
    /// [`CertError`].
    pub fn crl(
        &self,
        number: u64,
        serials: &[u64],
        this_update_ms: u64,
        next_update_ms: u64,
    ) -> Result<CertificateRevocationListDer<'static>, CertError> {
        Ok(self.crl_signed(number, serials, this_update_ms, next_update_ms)?.der().clone())
    }

    /// As [`Authority::crl`], PEM-encoded (the form `godwitd.toml` names).
    ///
    /// # Errors
    /// [`CertError`].
    pub fn crl_pem(
        &self,
        number: u64,
        serials: &[u64],
        this_update_ms: u64,
        next_update_ms: u64,
    ) -> Result<String, CertError> {
        Ok(self.crl_signed(number, serials, this_update_ms, next_update_ms)?.pem()?)
    }

    fn crl_signed(
        &self,
        number: u64,
        serials: &[u64],
        this_update_ms: u64,
        next_update_ms: u64,
    ) -> Result<rcgen::CertificateRevocationList, CertError> {
        let this_update = time_of(this_update_ms)?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update: time_of(next_update_ms)?,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: this_update,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.cert, &self.key)?)
    }
}

/// A node's public key as rcgen takes it for the subject of a certificate.
struct NodePublicKey([u8; 32]);

impl rcgen::PublicKeyData for NodePublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

/// The TLS server name of a node: `<nodeid>.godwit.invalid`.
pub fn dns_name(id: &NodeId) -> String {
    format!("{id}{DNS_SUFFIX}")
}

/// The identity key as PKCS#8 v1 (RFC 8410), for rustls and rcgen.
pub fn pkcs8(key: &IdentityKey) -> PrivatePkcs8KeyDer<'static> {
    const PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    // Allocated once at its final size, so no reallocation leaves a copy of the seed behind.
    let mut der = Vec::with_capacity(PREFIX.len() + 32);
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(&key.to_seed()[..]);
    PrivatePkcs8KeyDer::from(der)
}

/// Reads what a (chain-verified) peer certificate says, and checks it is a Godwit node
/// certificate: an Ed25519 key, the DNS name derived from that key, and a role.
///
/// # Errors
/// [`CertError::NotGodwit`] naming what is missing or inconsistent.
pub fn parse_peer(der: &[u8]) -> Result<PeerCert, CertError> {
    use x509_parser::prelude::*;
    let bad = |m: String| CertError::NotGodwit(m);
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(format!("unparseable: {e}")))?;
    let spki = cert.public_key();
    if spki.algorithm.algorithm.to_id_string() != "1.3.101.112" {
        return Err(bad("its key is not Ed25519".into()));
    }
    let key: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| bad("Ed25519 key is not 32 bytes".into()))?;
    let node_id = NodeId::from_bytes(key).map_err(|e| bad(e.to_string()))?;
    let (mut dns_ok, mut role) = (false, None);
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_ok |= *d == dns_name(&node_id),
                GeneralName::URI(u) => {
                    role = match u.strip_prefix(ROLE_URN) {
                        Some("member") => Some(Role::Member),
                        Some("hub") => Some(Role::Hub),
                        Some("authority") => Some(Role::Authority),
                        _ => role,
                    }
                }
                _ => {}
            }
        }
    }
    if !dns_ok {
        return Err(bad(format!("no DNS name {} matching its key", dns_name(&node_id))));
    }
    let role = role.ok_or_else(|| bad("no role (urn:godwit:role:...)".into()))?;
    let attr = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
    };
    Ok(PeerCert {
        node_id,
        role,
        administration: attr(&mut cert.subject().iter_organization()).unwrap_or_default(),
        country: attr(&mut cert.subject().iter_country()),
        region: attr(&mut cert.subject().iter_organizational_unit()),
        serial: normalize_serial(cert.raw_serial()),
        not_after: cert.validity().not_after.timestamp(),
        der: der.to_vec(),
    })
}

/// Serial numbers revoked by a DER CRL, and its CRL number.
///
/// # Errors
/// [`CertError::NotGodwit`] if it cannot be parsed.
pub fn crl_info(der: &[u8]) -> Result<(u64, Vec<Vec<u8>>), CertError> {
    use x509_parser::prelude::*;
    let (_, crl) = CertificateRevocationList::from_der(der)
        .map_err(|e| CertError::NotGodwit(format!("unparseable CRL: {e}")))?;
    let number = crl.crl_number().map(|n| n.to_u64_digits().first().copied().unwrap_or(0)).unwrap_or(0);
    Ok((number, crl.iter_revoked_certificates().map(|r| normalize_serial(r.raw_serial())).collect()))
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Member => "member",
        Role::Hub => "hub",
        Role::Authority => "authority",
    }
}

fn time_of(ms: u64) -> Result<OffsetDateTime, CertError> {
    OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).map_err(|e| CertError::Time(e.to_string()))
}

/// A serial number as compared here: big-endian bytes without leading zeros.
pub fn serial_bytes(serial: u64) -> Vec<u8> {
    normalize_serial(&serial.to_be_bytes())
}

fn normalize_serial(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    raw[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000_000;
    const DAY: u64 = 86_400_000;

    #[test]
    fn issues_node_certificates_that_carry_identity_and_role() {
        let ca = Authority::new("Godwit Test Network CA", NOW - DAY, NOW + 365 * DAY).unwrap();
        let id = IdentityKey::from_seed(&[3; 32]);
        let attrs = NodeAttrs {
            administration: "Kenya Revenue Authority".into(),
            country: "KE".parse().unwrap(),
            region: "ESA".into(),
            role: Role::Hub,
        };
        let issued = ca.issue(&id, &attrs, 42, NOW - DAY, NOW + 90 * DAY).unwrap();
        let peer = parse_peer(&issued.der).unwrap();
        assert_eq!(peer.node_id, id.node_id());
        assert_eq!(peer.role, Role::Hub);
        assert_eq!(peer.administration, "Kenya Revenue Authority");
        assert_eq!(peer.country.as_deref(), Some("KE"));
        assert_eq!(peer.region.as_deref(), Some("ESA"));
        assert_eq!(peer.serial, serial_bytes(42));
        assert!(issued.pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn crls_list_revoked_serials_and_their_number() {
        let ca = Authority::new("CA", NOW - DAY, NOW + DAY).unwrap();
        let crl = ca.crl(7, &[5, 300], NOW, NOW + DAY).unwrap();
        let (number, serials) = crl_info(&crl).unwrap();
        assert_eq!(number, 7);
        assert_eq!(serials, vec![serial_bytes(5), serial_bytes(300)]);
    }

    #[test]
    fn refuses_certificates_without_godwit_attributes() {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cert =
            CertificateParams::new(vec!["example.org".to_string()]).unwrap().self_signed(&ca_key).unwrap();
        let e = parse_peer(cert.der()).unwrap_err();
        assert!(e.to_string().contains("no DNS name"), "{e}");
    }
}
