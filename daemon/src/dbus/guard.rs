//! The one door every D-Bus method goes through: it names the call from the message header
//! (`Interface.Member`), checks the caller (see [`super::access`]), runs the method's body
//! only when the caller is allowed, and counts the call and whether it failed in the
//! daemon's telemetry. A method is then its validation and its command, nothing else.

use super::access::{self, Access};
use super::error::Error;
use crate::api::{Command, Reply};
use crate::handle::ControlHandle;
use std::future::Future;
use zbus::message::Header;

/// Access check, call counting and command sending for the methods of one interface.
#[derive(Clone)]
pub struct Guard {
    h: ControlHandle,
    access: Access,
    interface: &'static str,
}

impl Guard {
    /// A guard for the interface `org.coldspray.ColdSpray1.<interface>`.
    pub fn new(h: ControlHandle, access: Access, interface: &'static str) -> Guard {
        Guard {
            h,
            access,
            interface,
        }
    }

    /// The short name of the call being handled (`Unit.Start`), as the access rules and the
    /// telemetry know it: the member is taken from the message header.
    pub fn method(&self, hdr: &Header<'_>) -> String {
        let member = hdr.member().map(|m| m.as_str()).unwrap_or("");
        format!("{}.{member}", self.interface)
    }

    /// Runs `body` if the sender of the message may call this method, and counts the call
    /// (and its error, a refusal included) in telemetry.
    pub async fn run<T>(
        &self,
        conn: &zbus::Connection,
        hdr: &Header<'_>,
        body: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let method = self.method(hdr);
        let r = match self.access.check(conn, hdr, &method).await {
            Ok(()) => body.await,
            Err(e) => Err(e),
        };
        self.h.telemetry.record_dbus_call(&method, r.is_err());
        r
    }

    /// Checks that the sender of a `Get`/`GetAll` may read the property `name` (as the
    /// access rules know it, `Interface.Name`); `hdr` is `None` when the service itself reads
    /// it to announce a change (the bus policy decides who receives that signal).
    pub async fn may_read(
        &self,
        conn: &zbus::Connection,
        hdr: Option<&Header<'_>>,
        name: &str,
    ) -> zbus::fdo::Result<()> {
        let Some(hdr) = hdr else { return Ok(()) };
        let what = format!("{}.{name}", self.interface);
        self.access
            .check(conn, hdr, &what)
            .await
            .map_err(|e| zbus::fdo::Error::AccessDenied(e.to_string()))
    }

    /// Sends a command to the controller and returns its reply.
    pub async fn request(&self, c: Command) -> Result<Reply, Error> {
        self.h.command(c).await.map_err(Error::from)
    }

    /// Sends a command to the controller; only whether it was accepted matters.
    pub async fn send(&self, c: Command) -> Result<(), Error> {
        self.request(c).await.map(drop)
    }

    /// Sends a settings command on behalf of the message's sender: the change is logged with
    /// the caller's uid.
    pub async fn send_as(
        &self,
        conn: &zbus::Connection,
        hdr: &Header<'_>,
        c: Command,
    ) -> Result<(), Error> {
        let uid = access::caller_uid(conn, hdr).await;
        self.h
            .command_by(c, uid)
            .await
            .map(drop)
            .map_err(Error::from)
    }
}

/// Writes a `#[zbus::interface]` impl whose methods all go through the interface's
/// [`Guard`] (the struct's `guard` field): each method written inside `methods { }` as
/// `async fn name(&self, hdr, conn, arg: Type, ...) -> [T] { body }` gets the message header
/// as `hdr` and the connection as `conn` and returns `Result<T, Error>`; its body (evaluating
/// to `Result<T, Error>`, `?` allowed) runs only when [`Guard::run`] allows the caller, and
/// the call is counted. The return type is in brackets so that zbus sees its tokens (a `ty`
/// fragment would hide `()` and tuples from the interface macro, which needs them for the
/// XML). Properties and signals follow the `methods` block unchanged.
macro_rules! guarded_interface {
    (
        #[interface($($iface:tt)*)]
        impl $ty:ident {
            methods {
                $(
                    $(#[$meta:meta])*
                    async fn $name:ident(
                        &$self:ident, $hdr:ident, $conn:ident $(, $arg:ident: $argty:ty)* $(,)?
                    ) -> [$($ret:tt)*] $body:block
                )*
            }
            $($rest:tt)*
        }
    ) => {
        #[zbus::interface($($iface)*)]
        impl $ty {
            $(
                $(#[$meta])*
                async fn $name(
                    &$self,
                    #[zbus(header)] $hdr: zbus::message::Header<'_>,
                    #[zbus(connection)] $conn: &zbus::Connection,
                    $($arg: $argty),*
                ) -> Result<$($ret)*, $crate::dbus::error::Error> {
                    $self.guard.run($conn, &$hdr, async $body).await
                }
            )*
            $($rest)*
        }
    };
}
pub(crate) use guarded_interface;
