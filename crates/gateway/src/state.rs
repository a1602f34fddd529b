//! The routing state — which colour is active, which was active before, the canary weights
//! and the shadow percentage — and its persistence: one JSON file, replaced atomically
//! (write a temporary file in the same folder, fsync, rename), so a crash leaves either the
//! old or the new state and a restarted gateway routes exactly as before.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

use crate::error::GatewayError;

pub use admin_api::{Colour, Weights};

impl From<admin_api::UnknownColour> for GatewayError {
    fn from(e: admin_api::UnknownColour) -> GatewayError {
        GatewayError::BadInput(e.to_string())
    }
}

/// Routing arithmetic on the protocol's [`Weights`].
pub trait WeightsExt: Sized {
    /// Weights from what a caller gave: one or both colours; the missing one is the rest of 100.
    fn from_parts(blue: Option<u32>, green: Option<u32>) -> Result<Self, GatewayError>;

    /// The colour for a roll in `0..100`.
    fn pick(&self, roll: u32) -> Colour;
}

impl WeightsExt for Weights {
    fn from_parts(blue: Option<u32>, green: Option<u32>) -> Result<Weights, GatewayError> {
        let check = |name: &str, v: u32| {
            if v > 100 {
                Err(GatewayError::BadInput(format!(
                    "weight {name}={v} is out of range: weights are percentages 0..=100"
                )))
            } else {
                Ok(v)
            }
        };
        let w = match (blue, green) {
            (None, None) => return Err(GatewayError::BadInput("give a weight for blue, green or both".into())),
            (Some(b), None) => Weights { blue: check("blue", b)?, green: 100 - b },
            (None, Some(g)) => Weights { blue: 100 - check("green", g)?, green: g },
            (Some(b), Some(g)) => Weights { blue: check("blue", b)?, green: check("green", g)? },
        };
        if w.blue + w.green != 100 {
            return Err(GatewayError::BadInput(format!(
                "weights must add up to 100, got blue={} + green={} = {}",
                w.blue,
                w.green,
                w.blue + w.green
            )));
        }
        Ok(w)
    }

    fn pick(&self, roll: u32) -> Colour {
        if roll < self.blue {
            Colour::Blue
        } else {
            Colour::Green
        }
    }
}

/// Where traffic goes. Persisted as JSON in the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingState {
    pub active: Colour,
    pub previous: Option<Colour>,
    pub weights: Weights,
    pub shadow_percent: u32,
}

impl Default for RoutingState {
    fn default() -> RoutingState {
        RoutingState { active: Colour::Blue, previous: None, weights: Weights::all(Colour::Blue), shadow_percent: 0 }
    }
}

/// Reads the state file; `None` when it does not exist yet.
pub fn load(path: &Path) -> Result<Option<RoutingState>, GatewayError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GatewayError::State(format!("reading {}: {e}", path.display()))),
    };
    let state: RoutingState = serde_json::from_str(&text)
        .map_err(|e| GatewayError::State(format!("{} is not a gateway state file: {e}", path.display())))?;
    if state.weights.blue + state.weights.green != 100 || state.shadow_percent > 100 {
        return Err(GatewayError::State(format!("{}: weights or shadow percent out of range", path.display())));
    }
    Ok(Some(state))
}

/// Replaces the state file atomically: temporary file in the same folder, fsync, rename.
pub fn save(path: &Path, state: &RoutingState) -> Result<(), GatewayError> {
    let err = |what: &str, e: std::io::Error| GatewayError::State(format!("{what} {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err("creating a temporary file next to", e))?;
    let mut text = serde_json::to_vec_pretty(state).expect("routing state serialises");
    text.push(b'\n');
    tmp.write_all(&text).map_err(|e| err("writing", e))?;
    tmp.as_file().sync_all().map_err(|e| err("syncing", e))?;
    tmp.persist(path).map_err(|e| err("renaming into", e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(blue: Option<u32>, green: Option<u32>, expect: Result<(u32, u32), &str>) {
        match (Weights::from_parts(blue, green), expect) {
            (Ok(w), Ok((b, g))) => assert_eq!((w.blue, w.green), (b, g)),
            (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{e}"),
            (got, want) => panic!("{blue:?}/{green:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn weights() {
        check(None, Some(10), Ok((90, 10)));
        check(Some(90), Some(10), Ok((90, 10)));
        check(Some(100), None, Ok((100, 0)));
        check(Some(50), Some(10), Err("add up to 100"));
        check(None, Some(101), Err("out of range"));
        check(None, None, Err("give a weight"));
    }

    #[test]
    fn pick_follows_weights() {
        let w = Weights { blue: 90, green: 10 };
        let green = (0..100).filter(|r| w.pick(*r) == Colour::Green).count();
        assert_eq!(green, 10);
        assert_eq!(Weights::all(Colour::Green).pick(0), Colour::Green);
        assert_eq!(Weights::all(Colour::Blue).pick(99), Colour::Blue);
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), None);
        let s = RoutingState {
            active: Colour::Green,
            previous: Some(Colour::Blue),
            weights: Weights { blue: 10, green: 90 },
            shadow_percent: 5,
        };
        save(&path, &s).unwrap();
        assert_eq!(load(&path).unwrap(), Some(s));
        std::fs::write(&path, "{").unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn colours_parse() {
        assert_eq!("Green".parse::<Colour>().unwrap(), Colour::Green);
        assert!("red".parse::<Colour>().is_err());
    }
}
