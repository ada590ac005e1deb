use std::time::Duration;

use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::{BlockdevAdd, BlockdevCreate};
use qapi_types::qmp::{
    BlockdevCreateOptionsFile, BlockdevCreateOptionsQcow2, BlockdevOptions, BlockdevOptionsBranch,
    BlockdevOptionsFile, BlockdevOptionsQcow2,
};

/// Creates a 64 MiB qcow2 image at `path` and adds it as the node
/// `node`: a qcow2 node over the file node `{node}-file`.
pub fn add_qcow2_disk(qmp: &Qmp, path: &str, node: &str) -> qapi_types::Result<()> {
    let limit = Some(Duration::from_secs(60));
    let file_node = format!("{node}-file");
    // An empty file, made by a job (`run_job` waits for its end and
    // dismisses it), then opened as a file node.  Three drivers share
    // BlockdevOptionsFile, so the branch is named.
    let create = BlockdevCreate::new(
        format!("create-{node}"),
        BlockdevCreateOptionsFile::new(path, 0),
    );
    qmp.run_job(&create, limit)?;
    let file = BlockdevOptionsBranch::File(BlockdevOptionsFile::new(path));
    let file = BlockdevOptions::new(file).node_name(&file_node);
    qmp.execute(&BlockdevAdd(file))?;
    // Formatted as qcow2 by a second job, then the qcow2 node over it.
    let format = BlockdevCreate::new(
        format!("format-{node}"),
        BlockdevCreateOptionsQcow2::new(file_node.as_str(), 64 << 20),
    );
    qmp.run_job(&format, limit)?;
    let disk = BlockdevOptions::from(BlockdevOptionsQcow2::new(file_node.as_str()));
    qmp.execute(&BlockdevAdd(disk.node_name(node)))
}
