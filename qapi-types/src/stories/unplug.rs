use std::time::Duration;

use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::DeviceAdd;

/// Plugs a USB keyboard into `bus` (e.g. `xhci.0`, the bus of `-device
/// qemu-xhci,id=xhci`), then unplugs it and waits for its
/// DEVICE_DELETED.
pub fn unplug(qmp: &Qmp, bus: &str) -> qapi_types::Result<()> {
    qmp.execute(&DeviceAdd::new("usb-kbd").id("kbd0").bus(bus))?;
    // A USB device leaves at once.  A PCIe device leaves only when the
    // guest's OS lets it go (QEMU presses the slot's attention button
    // and waits): with no guest running, its DEVICE_DELETED never comes.
    // `device_del` sends the command, then waits for that event.
    qmp.device_del("kbd0", Some(Duration::from_secs(60)))
}
