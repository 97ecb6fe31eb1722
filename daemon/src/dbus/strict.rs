//! [`Strict`]: an interface as zbus serves it, with the two standard answers zbus 5's
//! `#[interface]` does not give: a call whose arguments do not have the method's signature is
//! answered `org.freedesktop.DBus.Error.InvalidArgs` (zbus answers `org.freedesktop.zbus.Error`
//! after failing to read them), and a `Set` on a read-only property is answered
//! `org.freedesktop.DBus.Error.PropertyReadOnly` (zbus says `UnknownProperty`). Both are read
//! from the interface's own introspection, so they cannot drift from it. Everything else is
//! handed to the interface untouched.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::ops::Deref;
use zbus::message::{Header, Message};
use zbus::names::{InterfaceName, MemberName};
use zbus::object_server::{DispatchResult2, Interface, SignalEmitter};
use zbus::zvariant::{OwnedValue, Value};
use zbus::{fdo, Connection, ObjectServer};

/// An interface with strict argument and read-only checks (see the module documentation).
pub struct Strict<I> {
    inner: I,
    /// In-argument signature of each method.
    methods: HashMap<String, String>,
    /// Properties without write access.
    read_only: HashSet<String>,
}

impl<I: Interface> Strict<I> {
    /// Wraps `inner`, reading its methods and properties from its introspection XML.
    pub fn new(inner: I) -> Self {
        let mut xml = String::new();
        inner.introspect_to_writer(&mut xml, 0);
        let (methods, read_only) = members(&xml);
        Strict {
            inner,
            methods,
            read_only,
        }
    }
}

impl<I> Deref for Strict<I> {
    type Target = I;
    fn deref(&self) -> &I {
        &self.inner
    }
}

/// The value of attribute `name` in one XML tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    tag.split(&format!(" {name}=\"")).nth(1)?.split('"').next()
}

/// Each method's in-argument signature and the read-only properties of one interface's
/// introspection XML (as zbus writes it: one tag per line).
fn members(xml: &str) -> (HashMap<String, String>, HashSet<String>) {
    let mut methods = HashMap::new();
    let mut read_only = HashSet::new();
    let mut current: Option<String> = None;
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<method ") {
            let name = attr(line, "name").unwrap_or_default().to_string();
            methods.insert(name.clone(), String::new());
            current = (!line.ends_with("/>")).then_some(name);
        } else if line.starts_with("</method>") {
            current = None;
        } else if let (Some(m), true) = (&current, line.starts_with("<arg ")) {
            if attr(line, "direction") == Some("in") {
                if let Some(sig) = methods.get_mut(m) {
                    sig.push_str(attr(line, "type").unwrap_or_default());
                }
            }
        } else if line.starts_with("<property ") && attr(line, "access") == Some("read") {
            read_only.insert(attr(line, "name").unwrap_or_default().to_string());
        }
    }
    (methods, read_only)
}

fn refuse<'a>(e: fdo::Error) -> DispatchResult2<'a> {
    DispatchResult2::Async(Box::pin(async move { Err(e) }))
}

#[async_trait::async_trait]
impl<I: Interface> Interface for Strict<I> {
    fn name() -> InterfaceName<'static> {
        I::name()
    }

    fn spawn_tasks_for_methods(&self) -> bool {
        self.inner.spawn_tasks_for_methods()
    }

    async fn get(
        &self,
        property_name: &str,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<fdo::Result<OwnedValue>> {
        self.inner
            .get(property_name, server, connection, header, emitter)
            .await
    }

    async fn get_all(
        &self,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> fdo::Result<HashMap<String, OwnedValue>> {
        self.inner
            .get_all(server, connection, header, emitter)
            .await
    }

    fn set<'call>(
        &'call self,
        property_name: &'call str,
        value: &'call Value<'_>,
        server: &'call ObjectServer,
        connection: &'call Connection,
        header: Option<&'call Header<'_>>,
        emitter: &'call SignalEmitter<'_>,
    ) -> DispatchResult2<'call> {
        if self.read_only.contains(property_name) {
            return refuse(fdo::Error::PropertyReadOnly(format!(
                "property {property_name} is read-only"
            )));
        }
        self.inner
            .set(property_name, value, server, connection, header, emitter)
    }

    async fn set_mut(
        &mut self,
        property_name: &str,
        value: &Value<'_>,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<fdo::Result<()>> {
        self.inner
            .set_mut(property_name, value, server, connection, header, emitter)
            .await
    }

    fn call<'call>(
        &'call self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult2<'call> {
        if let Some(want) = self.methods.get(name.as_str()) {
            // zvariant writes a body of several arguments as one structure: `(sa{sv})`.
            let got = msg.body().signature().to_string();
            if &got != want && got != format!("({want})") {
                return refuse(fdo::Error::InvalidArgs(format!(
                    "{name} takes ({want}), not ({got})"
                )));
            }
        }
        self.inner.call(server, connection, msg, name)
    }

    fn call_mut<'call>(
        &'call mut self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult2<'call> {
        self.inner.call_mut(server, connection, msg, name)
    }

    fn introspect_to_writer(&self, writer: &mut dyn Write, level: usize) {
        self.inner.introspect_to_writer(writer, level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_signatures_and_read_only_properties_from_the_xml() {
        let xml = r#"<interface name="x.Y">
  <method name="Start">
    <arg name="protocol" type="s" direction="in"/>
    <arg name="options" type="a{sv}" direction="in"/>
    <arg name="session_id" type="t" direction="out"/>
  </method>
  <method name="Stop">
  </method>
  <method name="Ping"/>
  <property name="State" type="s" access="read"/>
  <property name="Knob" type="d" access="readwrite"/>
</interface>"#;
        let (methods, read_only) = members(xml);
        assert_eq!(methods["Start"], "sa{sv}");
        assert_eq!(methods["Stop"], "");
        assert_eq!(methods["Ping"], "");
        assert!(read_only.contains("State") && !read_only.contains("Knob"));
    }
}
