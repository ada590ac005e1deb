use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::DeviceAdd;

/// Plugs the block node `node` in as the virtio-blk-pci device `id` on
/// the PCIe root port `port` (e.g. `-device
/// pcie-root-port,id=root0,chassis=1` on a q35 machine).
pub fn hotplug(qmp: &Qmp, node: &str, id: &str, port: &str) -> qapi_types::Result<()> {
    // device_add takes its typed arguments (driver, id, bus) plus the
    // device's own properties, of any JSON type.
    let disk = DeviceAdd::new("virtio-blk-pci")
        .id(id)
        .bus(port)
        .prop("drive", node);
    qmp.execute(&disk)
}
