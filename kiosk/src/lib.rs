//! The ColdSpray kiosk: the unit's touchscreen face, a client of `coldsprayd` over D-Bus.
