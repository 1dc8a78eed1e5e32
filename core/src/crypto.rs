//! The national cryptographic algorithms the network's interfaces use:
//! SM3 hashes, HMAC-SM3 request signatures (I2) and SM2 signatures on reports
//! issued by a lab or an imaging department (L8, B3), and SM4-GCM sealing of
//! the durable store's rows (S1). Pure Rust (RustCrypto's `sm2`/`sm3`/`sm4`);
//! keys and signatures travel as hex text. An SM2 signature is accepted in
//! both forms in use: the raw `r‖s` (64 bytes) and the DER encoding of
//! GM/T 0009 (`SEQUENCE { INTEGER r, INTEGER s }`) that OpenSSL, GmSSL and
//! BouncyCastle emit.

use crate::error::{Error, ErrorCode, Result};
use hmac::{KeyInit, Mac};
use sm2::dsa::signature::{Signer, Verifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm3::{Digest, Sm3};

/// The distinguishing identifier GM/T 0009 fixes when parties agree on none.
pub const DEFAULT_SM2_ID: &str = "1234567812345678";

/// SM3 of `data`, as lowercase hex.
pub fn sm3_hex(data: &[u8]) -> String {
    hex::encode(Sm3::digest(data))
}

/// HMAC-SM3 of `data` under `key`, as lowercase hex.
pub fn hmac_sm3_hex(key: &[u8], data: &[u8]) -> String {
    hex::encode(hmac_sm3(key, data))
}

pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <hmac::Hmac<Sm3> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Compares two MACs in constant time (a signature check must not leak how
/// many leading bytes matched).
pub fn hmac_sm3_verify(key: &[u8], data: &[u8], mac_hex: &str) -> bool {
    let Ok(given) = hex::decode(mac_hex.trim()) else {
        return false;
    };
    let mut mac = <hmac::Hmac<Sm3> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.verify_slice(&given).is_ok()
}

fn bad_key(what: &str) -> Error {
    Error::with(ErrorCode::InvalidField, format!("field `{what}`: not a valid SM2 key in hex"), format!("字段 `{what}` 无效：不是十六进制的有效 SM2 密钥"))
}

fn bad_signature() -> Error {
    Error::with(
        ErrorCode::InvalidField,
        "field `signature`: not an SM2 signature (r‖s as 128 hex digits, or the DER form of GM/T 0009 in hex)",
        "字段 `signature` 无效：不是 SM2 签名（应为 128 位十六进制的 r‖s，或 GM/T 0009 规定的 DER 编码的十六进制）",
    )
}

/// An SM2 signature from its bytes: exactly 64 bytes are `r‖s` (32 bytes
/// each, big-endian); anything else must be the DER form of GM/T 0009,
/// `SEQUENCE { INTEGER r, INTEGER s }`, read strictly (by the `der` crate
/// through `sm2`): definite, minimal lengths; positive, minimally encoded
/// integers of at most 32 bytes of value; nothing after the sequence or
/// inside it after `s`. Either way r and s must lie in [1, n-1].
///
/// A DER signature of exactly 64 bytes would need both r and s below
/// 2^232 (a chance of about 2^-48 for a real signature); such bytes are
/// read as `r‖s`.
fn signature_from_bytes(bytes: &[u8]) -> Option<Signature> {
    if bytes.len() == Signature::BYTE_SIZE {
        Signature::try_from(bytes).ok()
    } else {
        Signature::from_der(bytes).ok()
    }
}

/// An SM2 key pair: `(secret_hex, public_hex)`, the public key as an
/// uncompressed SEC1 point (`04‖x‖y`, 130 hex digits).
pub fn sm2_generate() -> (String, String) {
    let sk = loop {
        // A uniformly random scalar; the rare value outside [1, n-1] is drawn again.
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        if let Ok(sk) = SigningKey::from_slice(DEFAULT_SM2_ID, &bytes) {
            break sk;
        }
    };
    let pk = sk.verifying_key().to_sec1_bytes();
    (hex::encode(sk.to_bytes()), hex::encode(pk))
}

/// The public key of a secret key, both hex.
pub fn sm2_public_key(secret_hex: &str) -> Result<String> {
    let sk = signing_key(secret_hex, DEFAULT_SM2_ID)?;
    Ok(hex::encode(sk.verifying_key().to_sec1_bytes()))
}

fn signing_key(secret_hex: &str, id: &str) -> Result<SigningKey> {
    let bytes = hex::decode(secret_hex.trim()).map_err(|_| bad_key("secret_key"))?;
    SigningKey::from_slice(id, &bytes).map_err(|_| bad_key("secret_key"))
}

/// Signs `msg` (SM2 with SM3 and the signer's id); the signature is `r‖s` in hex.
pub fn sm2_sign(secret_hex: &str, id: Option<&str>, msg: &[u8]) -> Result<String> {
    let sk = signing_key(secret_hex, id.unwrap_or(DEFAULT_SM2_ID))?;
    let sig: Signature = sk.sign(msg);
    Ok(hex::encode(sig.to_bytes()))
}

/// Verifies an SM2 signature over `msg` with a public key (SEC1 hex,
/// compressed or not). The signature is hex of either form: `r‖s` (128
/// digits) or DER (GM/T 0009; see `signature_from_bytes`). `Ok(false)`:
/// well-formed but wrong.
pub fn sm2_verify(public_hex: &str, id: Option<&str>, msg: &[u8], signature_hex: &str) -> Result<bool> {
    let pk = hex::decode(public_hex.trim()).map_err(|_| bad_key("public_key"))?;
    let vk = VerifyingKey::from_sec1_bytes(id.unwrap_or(DEFAULT_SM2_ID), &pk).map_err(|_| bad_key("public_key"))?;
    let sig = hex::decode(signature_hex.trim()).ok().and_then(|b| signature_from_bytes(&b)).ok_or_else(bad_signature)?;
    Ok(vk.verify(msg, &sig).is_ok())
}

/// A 128-bit SM4 key. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sm4Key([u8; 16]);

impl std::fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm4Key(…)")
    }
}

impl Sm4Key {
    /// From 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Sm4Key> {
        let bytes = hex::decode(s.trim()).ok()?;
        Some(Sm4Key(bytes.try_into().ok()?))
    }
}

type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

/// Seals rows of the durable store with SM4-GCM (RFC 8998): personal data is
/// encrypted at rest (S1). Each row gets a fresh random nonce; the table and
/// key are the associated data, so a row cannot be moved to another place
/// unnoticed.
#[derive(Clone)]
pub struct RowCipher {
    aead: Sm4Gcm,
    hash_key: [u8; 32],
}

/// Marks a sealed row body (plain rows are JSON and never start with it).
pub const SEALED_PREFIX: &str = "sm4gcm:";

impl RowCipher {
    pub fn new(key: &Sm4Key) -> RowCipher {
        use aes_gcm::KeyInit;
        // A separate key for hashing, so the hash reveals nothing about the cipher key.
        let hash_key = hmac_sm3(&key.0, b"yilian row key hash");
        RowCipher { aead: Sm4Gcm::new_from_slice(&key.0).expect("SM4 keys are 16 bytes"), hash_key }
    }

    pub fn seal(&self, aad: &[u8], plain: &str) -> String {
        use aes_gcm::aead::{Aead, Payload};
        use base64::Engine as _;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source");
        // Encryption with a valid key and nonce cannot fail.
        let ct = self.aead.encrypt((&nonce).into(), Payload { msg: plain.as_bytes(), aad }).expect("SM4-GCM encryption");
        let mut raw = Vec::with_capacity(12 + ct.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ct);
        format!("{SEALED_PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw))
    }

    /// A keyed hash of `text` (HMAC-SM3 under a key derived from the SM4
    /// key), hex: lets a store look rows up by a value it must not store.
    pub fn key_hash(&self, text: &str) -> String {
        hmac_sm3_hex(&self.hash_key, text.as_bytes())[..32].to_string()
    }

    /// The plain text of a sealed body; `None` if it was not sealed under
    /// this key with this associated data (wrong key, or tampered).
    pub fn open(&self, aad: &[u8], sealed: &str) -> Option<String> {
        use aes_gcm::aead::{Aead, Payload};
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = self.aead.decrypt(nonce.into(), Payload { msg: ct, aad }).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sm3_matches_the_standard_examples() {
        // GB/T 32905-2016, examples 1 and 2.
        assert_eq!(sm3_hex(b"abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
        assert_eq!(sm3_hex(&b"abcd".repeat(16)), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
    }

    #[test]
    fn hmac_sm3_matches_openssl() {
        // python3 -c "import hmac; print(hmac.new(b'key', b'The quick brown fox jumps over the lazy dog', 'sm3').hexdigest())"
        let want = "bd4a34077888162b210645b8ebf74b9af357303789357a27c7fc457244ebd398";
        assert_eq!(hmac_sm3_hex(b"key", b"The quick brown fox jumps over the lazy dog"), want);
        assert!(hmac_sm3_verify(b"key", b"The quick brown fox jumps over the lazy dog", want));
        assert!(!hmac_sm3_verify(b"key", b"The quick brown fox jumps over the lazy cat", want));
        assert!(!hmac_sm3_verify(b"key", b"x", "not hex"));
    }

    // GM/T 0003.5-2012 (SM2 part 5), the signature example on the recommended curve.
    const STD_PUBLIC: &str =
        "0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
    const STD_SECRET: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
    const STD_SIGNATURE: &str =
        "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";

    #[test]
    fn sm2_verifies_the_standard_example() {
        assert!(sm2_verify(STD_PUBLIC, None, b"message digest", STD_SIGNATURE).unwrap());
        assert!(!sm2_verify(STD_PUBLIC, None, b"message digesT", STD_SIGNATURE).unwrap());
        assert!(!sm2_verify(STD_PUBLIC, Some("ALICE123@YAHOO.COM"), b"message digest", STD_SIGNATURE).unwrap());
        assert_eq!(sm2_public_key(STD_SECRET).unwrap(), STD_PUBLIC.to_lowercase());
    }

    /// DER `INTEGER` of a big-endian unsigned value, minimally encoded.
    fn der_int(v: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        [vec![0x02, v.len() as u8], v].concat()
    }

    fn der_seq(body: &[u8]) -> Vec<u8> {
        [vec![0x30, body.len() as u8], body.to_vec()].concat()
    }

    /// The DER form of an `r‖s` hex signature, written here independently of the `sm2` crate.
    fn to_der(rs_hex: &str) -> Vec<u8> {
        let rs = hex::decode(rs_hex).unwrap();
        der_seq(&[der_int(&rs[..32]), der_int(&rs[32..])].concat())
    }

    #[test]
    fn sm2_verifies_the_standard_example_in_der_form() {
        let der = to_der(STD_SIGNATURE);
        // r and s both have the high bit set: each INTEGER takes a 0x00 pad.
        assert_eq!(hex::encode_upper(&der), format!("3046022100{}022100{}", &STD_SIGNATURE[..64], &STD_SIGNATURE[64..]));
        assert!(sm2_verify(STD_PUBLIC, None, b"message digest", &hex::encode(&der)).unwrap());
        assert!(sm2_verify(STD_PUBLIC, None, b"message digest", &hex::encode_upper(&der)).unwrap());
        assert!(!sm2_verify(STD_PUBLIC, None, b"message digesT", &hex::encode(&der)).unwrap());
    }

    #[test]
    fn signatures_from_the_sm2_crate_verify_in_der_form_whatever_the_lengths_of_r_and_s() {
        let (sk_hex, pk) = sm2_generate();
        let sk = signing_key(&sk_hex, DEFAULT_SM2_ID).unwrap();
        // r or s with the high bit set (33-byte INTEGER), clear (32), or a leading zero byte (31 or less).
        let (mut padded, mut plain, mut short) = (false, false, false);
        for i in 0u32.. {
            let msg = format!("report {i}");
            let sig: Signature = sk.sign(msg.as_bytes());
            let der = sig.to_der();
            let der_hex = hex::encode(der.as_bytes());
            assert_eq!(der.as_bytes(), to_der(&hex::encode(sig.to_bytes())).as_slice(), "the sm2 crate's DER is GM/T 0009's");
            assert!(sm2_verify(&pk, None, msg.as_bytes(), &der_hex).unwrap(), "{der_hex}");
            assert!(sm2_verify(&pk, None, msg.as_bytes(), &hex::encode(sig.to_bytes())).unwrap());
            assert!(!sm2_verify(&pk, None, b"another report", &der_hex).unwrap());
            for first in [sig.r_bytes()[0], sig.s_bytes()[0]] {
                match first {
                    0 => short = true,
                    0x80.. => padded = true,
                    _ => plain = true,
                }
            }
            if padded && plain && short {
                break;
            }
            assert!(i < 5000, "no short r or s in 5000 signatures");
        }
    }

    #[test]
    fn malformed_der_signatures_are_refused_not_read_loosely() {
        let good = to_der(STD_SIGNATURE);
        let (r, s) = (hex::decode(&STD_SIGNATURE[..64]).unwrap(), hex::decode(&STD_SIGNATURE[64..]).unwrap());
        let int_raw = |v: &[u8]| [vec![0x02, v.len() as u8], v.to_vec()].concat();
        let n = hex::decode("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123").unwrap();
        let small = [0x12u8; 32];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("trailing byte", [good.clone(), vec![0]].concat()),
            ("two signatures", [good.clone(), good.clone()].concat()),
            ("r not minimal (extra 00)", der_seq(&[int_raw(&[&[0u8][..], &small].concat()), der_int(&s)].concat())),
            ("r not minimal (two pads)", der_seq(&[int_raw(&[&[0u8, 0][..], &r].concat()), der_int(&s)].concat())),
            ("s negative (pad missing)", der_seq(&[der_int(&r), int_raw(&s)].concat())),
            ("long-form outer length", [vec![0x30, 0x81, 0x46], good[2..].to_vec()].concat()),
            ("indefinite length", [vec![0x30, 0x80], good[2..].to_vec(), vec![0, 0]].concat()),
            ("outer length one short", [vec![0x30, 0x45], good[2..].to_vec()].concat()),
            ("outer length one long", [vec![0x30, 0x47], good[2..].to_vec()].concat()),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("r length wrong", [vec![0x30, 0x46, 0x02, 0x20], good[4..].to_vec()].concat()),
            ("SET, not SEQUENCE", [vec![0x31], good[1..].to_vec()].concat()),
            ("BIT STRING, not INTEGER", [vec![0x30, 0x46, 0x03], good[3..].to_vec()].concat()),
            ("a third INTEGER", der_seq(&[der_int(&r), der_int(&s), der_int(&[1])].concat())),
            ("s missing", der_seq(&der_int(&r))),
            ("empty SEQUENCE", vec![0x30, 0x00]),
            ("r zero", der_seq(&[int_raw(&[0]), der_int(&s)].concat())),
            ("r equal to the order n", der_seq(&[der_int(&n), der_int(&s)].concat())),
            ("r of 33 bytes of value", der_seq(&[int_raw(&[&[0x01u8][..], &r].concat()), der_int(&s)].concat())),
            ("nothing", vec![]),
        ];
        for (what, bytes) in cases {
            let x = sm2_verify(STD_PUBLIC, None, b"message digest", &hex::encode(&bytes)).expect_err(what);
            assert_eq!(x.code(), ErrorCode::InvalidField, "{what}");
            assert!(x.message().contains("signature") && !x.message().contains("public_key"), "{what}: {x:?}");
            assert!(!x.message_zh().contains("not"), "{what}: {}", x.message_zh());
        }
        // The raw form is still exactly 64 bytes.
        assert!(sm2_verify(STD_PUBLIC, None, b"message digest", &STD_SIGNATURE[..126]).is_err());
        assert!(sm2_verify(STD_PUBLIC, None, b"message digest", &format!("{STD_SIGNATURE}00")).is_err());
    }

    #[test]
    fn sm4_gcm_matches_rfc_8998() {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        // RFC 8998, appendix A.1.
        let key = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let iv = hex::decode("00001234567800000000ABCD").unwrap();
        let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").unwrap();
        let pt =
            hex::decode("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
                .unwrap();
        let ct = Sm4Gcm::new_from_slice(&key).unwrap().encrypt(iv.as_slice().into(), Payload { msg: &pt, aad: &aad }).unwrap();
        assert_eq!(
            hex::encode_upper(ct),
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D83DE3541E4C2B58177E065A9BF7B62EC"
        );
    }

    #[test]
    fn sealed_rows_open_only_with_their_key_and_place() {
        let c = RowCipher::new(&Sm4Key::from_hex("0123456789abcdeffedcba9876543210").unwrap());
        let sealed = c.seal(b"patients/PAT001", r#"{"name":"张三"}"#);
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("张三"));
        assert_ne!(sealed, c.seal(b"patients/PAT001", r#"{"name":"张三"}"#), "a fresh nonce per row");
        assert_eq!(c.open(b"patients/PAT001", &sealed).as_deref(), Some(r#"{"name":"张三"}"#));
        assert_eq!(c.open(b"patients/PAT002", &sealed), None, "moved to another key");
        let other = RowCipher::new(&Sm4Key::from_hex("00000000000000000000000000000000").unwrap());
        assert_eq!(other.open(b"patients/PAT001", &sealed), None, "wrong key");
        let mut tampered = sealed.clone();
        tampered.replace_range(20..21, if &sealed[20..21] == "A" { "B" } else { "A" });
        assert_eq!(c.open(b"patients/PAT001", &tampered), None);
        assert!(Sm4Key::from_hex("abcd").is_none());
        assert_eq!(format!("{:?}", Sm4Key::from_hex("0123456789abcdeffedcba9876543210").unwrap()), "Sm4Key(…)");
    }

    #[test]
    fn sm2_sign_then_verify_and_reject_garbage() {
        let (sk, pk) = sm2_generate();
        let sig = sm2_sign(&sk, None, b"report bytes").unwrap();
        assert!(sm2_verify(&pk, None, b"report bytes", &sig).unwrap());
        assert!(!sm2_verify(&pk, None, b"report bytez", &sig).unwrap());
        assert!(sm2_verify(&pk, None, b"x", "zz").is_err());
        assert!(sm2_verify("04abcd", None, b"x", &sig).is_err());
        assert!(sm2_sign("nothex", None, b"x").is_err());
    }
}
