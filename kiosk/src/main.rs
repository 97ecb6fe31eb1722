//! `coldspray-kiosk`: the touchscreen kiosk of the ColdSpray unit.

fn main() -> anyhow::Result<()> {
    Ok(())
}
