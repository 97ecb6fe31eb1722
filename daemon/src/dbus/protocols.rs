//! `org.coldspray.ColdSpray1.Protocols`: list, read and edit the spray protocols. Doc comments
//! here become the comments of the introspection XML.

use super::access::Access;
use super::convert::{self, Dict};
use super::error::Error;
use super::guard::{guarded_interface, Guard};
use super::validate as v;
use crate::api::Command;
use crate::handle::ControlHandle;
use std::collections::HashMap;
use zbus::zvariant::OwnedValue;

/// `org.coldspray.ColdSpray1.Protocols`: spray protocols.
pub struct Protocols {
    h: ControlHandle,
    guard: Guard,
}

impl Protocols {
    /// Serves the daemon behind `h`, callers checked by `access`.
    pub fn new(h: ControlHandle, access: Access) -> Protocols {
        Protocols {
            guard: Guard::new(h.clone(), access, "Protocols"),
            h,
        }
    }
}

guarded_interface! {
    #[interface(name = "org.coldspray.ColdSpray1.Protocols")]
    impl Protocols {
        methods {
            /// List: every protocol as a dictionary: name s, title s, goal s (protect|prepare),
            /// spray_s d, pattern s (continuous|pulsed), on_ms u, off_ms u (pulsed only),
            /// pump_percent u, skin_target_c d (absent when none), skin_floor_c d, band_c d, hold_s
            /// d.
            async fn list(&self, hdr, conn) -> [Vec<Dict>] {
                Ok(self.h.protocols().iter().map(convert::protocol).collect())
            }

            /// Get: one protocol by name (dictionary as in List). Errors: UnknownProtocol,
            /// InvalidArgument.
            async fn get(&self, hdr, conn, name: String) -> [Dict] {
                v::protocol_name(&name)?;
                self.h
                    .protocols()
                    .iter()
                    .find(|p| p.name == name)
                    .map(convert::protocol)
                    .ok_or_else(|| Error::UnknownProtocol(format!("unknown protocol `{name}`")))
            }

            /// Create (admin): add a protocol. Required keys: name, title, goal, spray_s; defaults:
            /// pattern continuous, pump_percent 100, no skin target, skin_floor_c 10, band_c 1,
            /// hold_s 10. Errors: InvalidArgument (also when the name exists), OutOfRange.
            async fn create(&self, hdr, conn, protocol: HashMap<String, OwnedValue>) -> [()] {
                let p = v::protocol_create(&protocol)?;
                if self.h.protocols().iter().any(|x| x.name == p.name) {
                    return Err(Error::InvalidArgument(format!(
                        "protocol `{}` exists (use Update)",
                        p.name
                    )));
                }
                self.guard.send(Command::UpsertProtocol(Box::new(p))).await
            }

            /// Update (admin): change some fields of a protocol (keys as in List; name cannot
            /// change; skin_target_c "none" removes the target). Errors: UnknownProtocol,
            /// InvalidArgument, OutOfRange.
            async fn update(
                &self,
                hdr,
                conn,
                name: String,
                changes: HashMap<String, OwnedValue>,
            ) -> [()] {
                v::known_protocol(&name, &self.h.protocols())?;
                let all = self.h.protocols();
                let existing = all
                    .iter()
                    .find(|p| p.name == name)
                    .ok_or_else(|| Error::UnknownProtocol(format!("unknown protocol `{name}`")))?;
                let p = v::protocol_update(existing, &changes)?;
                self.guard.send(Command::UpsertProtocol(Box::new(p))).await
            }

            /// Delete (admin): delete a protocol (factory protocols cannot be deleted). Errors:
            /// UnknownProtocol, NotPermitted.
            async fn delete(&self, hdr, conn, name: String) -> [()] {
                v::known_protocol(&name, &self.h.protocols())?;
                self.guard.send(Command::DeleteProtocol { name }).await
            }
        }

        /// Names: protocol names, in display order.
        #[zbus(property)]
        fn names(&self) -> Vec<String> {
            self.h.protocols().iter().map(|p| p.name.clone()).collect()
        }
    }
}
