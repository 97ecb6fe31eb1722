//! Introspection XML: fetch it live, read the shipped files, compare member sets.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use coldsprayd::dbus::INTERFACES;
pub use coldsprayd::dbus::{NAME, PATH};

/// Interfaces that are always served (the daemon's list without the simulator's).
pub const ALWAYS: [&str; 4] = [INTERFACES[0], INTERFACES[1], INTERFACES[2], INTERFACES[3]];
/// The simulator interface (served only on the sim).
pub const SIMULATOR: &str = INTERFACES[4];

/// The shipped XML file of an interface.
pub fn shipped_path(interface: &str) -> PathBuf {
    super::repo_root()
        .join("packaging/dbus")
        .join(format!("{interface}.xml"))
}

/// Calls `Introspect` on the service.
pub async fn live_xml(conn: &zbus::Connection) -> Result<String> {
    let proxy = zbus::fdo::IntrospectableProxy::builder(conn)
        .destination(NAME)?
        .path(PATH)?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    Ok(proxy.introspect().await?)
}

/// Normalised members of every `org.coldspray.*` interface in an XML document: one line per
/// method (`method Name(in)->(out)`), property (`property Name type access`) and signal
/// (`signal Name(args)`), with argument names.
pub fn members(xml: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let node = zbus_xml::Node::from_reader(xml.as_bytes()).context("parsing introspection XML")?;
    let mut out = BTreeMap::new();
    for iface in node.interfaces() {
        let name = iface.name().to_string();
        if !name.starts_with("org.coldspray.") {
            continue;
        }
        let mut set = BTreeSet::new();
        for m in iface.methods() {
            let (mut ins, mut outs) = (Vec::new(), Vec::new());
            for a in m.args() {
                let s = format!("{}:{}", a.name().unwrap_or(""), &**a.ty());
                match a.direction() {
                    Some(zbus_xml::ArgDirection::Out) => outs.push(s),
                    _ => ins.push(s),
                }
            }
            set.insert(format!(
                "method {}({})->({})",
                m.name(),
                ins.join(","),
                outs.join(",")
            ));
        }
        for p in iface.properties() {
            set.insert(format!(
                "property {} {} {:?}",
                p.name(),
                &**p.ty(),
                p.access()
            ));
        }
        for s in iface.signals() {
            let args: Vec<_> = s
                .args()
                .iter()
                .map(|a| format!("{}:{}", a.name().unwrap_or(""), &**a.ty()))
                .collect();
            set.insert(format!("signal {}({})", s.name(), args.join(",")));
        }
        out.insert(name, set);
    }
    Ok(out)
}

/// Splits a live introspection document into one standalone document per ColdSpray
/// interface, keeping the doc comments: `(interface name, xml)`.
pub fn split(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<interface name=\"org.coldspray.") {
        let after = &rest[start..];
        let Some(end) = after.find("</interface>") else {
            break;
        };
        let block = &after[..end + "</interface>".len()];
        let name_start = "<interface name=\"".len();
        let name_end = block[name_start..].find('"').map(|i| i + name_start);
        if let Some(ne) = name_end {
            let name = block[name_start..ne].to_string();
            // Keep the comment that documents the interface, if the block is preceded by one.
            let doc = format!(
                "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<!--\n  {name}, served by coldsprayd at {PATH} under the bus name {NAME}.\n  Errors are org.coldspray.ColdSpray1.Error.* (NotReady, InterlockActive, UnknownProtocol,\n  OutOfRange, InvalidArgument, NotPermitted, PermissionDenied, StoreUnavailable,\n  UnknownAlarm, UnknownSession, ShuttingDown, StoreError, NotRecorded); the message is for humans.\n  Generated from the running service; a test fails when the two differ.\n-->\n<node>\n  {}\n</node>\n",
                block.trim()
            );
            out.push((name, doc));
        }
        rest = &after[end..];
    }
    out
}
