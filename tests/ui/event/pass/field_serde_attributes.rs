// Field-level `#[serde(..)]` shapes the stored payload, on named fields and on a
// newtype variant's field alike (`with` included).
use annals::prelude::*;

mod as_string {
    pub fn serialize<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Note(pub String);

#[event]
pub enum AccountEvent {
    Deposited {
        #[serde(rename = "amt", with = "as_string")]
        amount: u64,
    },
    Noted(#[serde(with = "as_string")] u64),
    Plain(Note),
}

fn main() {
    let e = AccountEvent::Deposited { amount: 5 };
    let p = e.encode().unwrap();
    assert_eq!(p.as_str(), r#"{"amt":"5"}"#);
    assert_eq!(AccountEvent::decode("Deposited", 1, &p).unwrap(), e);
    let n = AccountEvent::Noted(7);
    let p = n.encode().unwrap();
    assert_eq!(p.as_str(), r#""7""#);
    assert_eq!(AccountEvent::decode("Noted", 1, &p).unwrap(), n);
    let q = AccountEvent::Plain(Note("x".into()));
    assert_eq!(q.encode().unwrap().as_str(), r#""x""#);
    println!("ok");
}
