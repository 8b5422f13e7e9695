//! `Transport` for the crate's HTTP client: the only place the engine touches `crate::client`.

use crate::error::Result;
use crate::{AssetParams, Client, PartBody, PartSpec};

use super::transport::{AssetSpec, Body, PartReq, Transport};

fn params(spec: &AssetSpec, realtime: bool, filesize: Option<u64>) -> AssetParams {
    AssetParams {
        name: spec.name.clone(),
        extension: spec.extension.clone(),
        filetype: spec.filetype.clone(),
        filesize,
        realtime,
        channel: spec.channel,
        offset: spec.offset,
        ..Default::default()
    }
}

impl Transport for Client {
    fn create_realtime_asset(&self, spec: &AssetSpec) -> Result<String> {
        Ok(self.create_asset(&params(spec, true, None))?.id)
    }

    fn create_basic_asset(&self, spec: &AssetSpec, filesize: u64) -> Result<(String, Vec<String>)> {
        let a = self.create_asset(&params(spec, false, Some(filesize)))?;
        Ok((a.id, a.upload_urls))
    }

    fn register_parts(
        &self,
        asset_id: &str,
        parts: &[PartReq],
        asset_name: Option<&str>,
        asset_filesize: Option<u64>,
    ) -> Result<Vec<String>> {
        let specs: Vec<PartSpec> =
            parts.iter().map(|p| PartSpec { number: p.number, size: p.size, is_final: p.is_final }).collect();
        Client::register_parts(self, asset_id, &specs, asset_name, asset_filesize)
    }

    fn register_parts_cancellable(
        &self,
        asset_id: &str,
        parts: &[PartReq],
        asset_name: Option<&str>,
        asset_filesize: Option<u64>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<String>> {
        let specs: Vec<PartSpec> =
            parts.iter().map(|p| PartSpec { number: p.number, size: p.size, is_final: p.is_final }).collect();
        Client::register_parts_cancellable(self, asset_id, &specs, asset_name, asset_filesize, cancelled)
    }

    fn put_part(&self, url: &str, body: Body<'_>, content_type: &str, hook: &dyn Fn(u64) -> bool) -> Result<()> {
        let b = match body {
            Body::Bytes(b) => PartBody::Bytes(b),
            Body::File { file, offset, len } => PartBody::File { file, offset, len },
        };
        // hook(0) sends nothing and answers whether the upload still runs: a cancelled upload must not
        // sit out a long Retry-After in the client's retry loop (fio_upload_free waits for the workers)
        Client::put_part_cancellable(self, url, b, content_type, Some(hook), &|| !hook(0))
    }
}
