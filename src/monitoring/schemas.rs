//! The schemas a client can fetch: every module of the libyang context
//! (implemented or imported), listed in `/netconf-state/schemas` and served
//! by `<get-schema>` (RFC 6022 §3.1).

use yang5::schema::SchemaModule;

use crate::protocol::error::RpcError;
use crate::protocol::ext::{GetSchema, SchemaFormat, NCM_NS};
use crate::protocol::xml::escape_text;
use crate::schema::Schema;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    pub name: String,
    pub revision: Option<String>,
    pub namespace: String,
}

/// Every module in the context, sorted by name and revision.
pub fn list(schema: &Schema) -> Vec<ModuleInfo> {
    let mut out: Vec<ModuleInfo> = schema
        .ctx
        .modules(false)
        .map(|m| ModuleInfo {
            name: m.name().to_string(),
            revision: m.revision().map(str::to_string),
            namespace: m.namespace().to_string(),
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.revision).cmp(&(&b.name, &b.revision)));
    out.dedup();
    out
}

/// The reply content of `<get-schema>`: `<data>` in the monitoring
/// namespace holding the module text.
pub fn get_schema(schema: &Schema, req: &GetSchema) -> Result<String, RpcError> {
    let matching: Vec<SchemaModule<'static>> = schema
        .ctx
        .modules(false)
        .filter(|m| m.name() == req.identifier)
        .filter(|m| match &req.version {
            None => true,
            Some(v) => m.revision() == Some(v.as_str()),
        })
        .collect();
    let module = match matching.as_slice() {
        [] => {
            let what = match &req.version {
                Some(v) => format!("{}@{v}", req.identifier),
                None => req.identifier.clone(),
            };
            return Err(
                RpcError::app("invalid-value", format!("no schema {what} on this server"))
                    .bad_element("identifier"),
            );
        }
        [m] => m,
        _ => {
            // RFC 6022 §3.1: several revisions match.
            return Err(RpcError::app(
                "operation-failed",
                format!(
                    "several revisions of {} exist; name one with <version>",
                    req.identifier
                ),
            )
            .with_app_tag("data-not-unique")
            .bad_element("version"));
        }
    };
    let text = module_text(module, req.format)?;
    Ok(format!(
        "<data xmlns=\"{NCM_NS}\">{}</data>",
        escape_text(&text)
    ))
}

/// The module's source: the file it was loaded from (YANG, as written),
/// else libyang's printout of the parsed module (internal modules, YIN).
fn module_text(module: &SchemaModule<'static>, format: SchemaFormat) -> Result<String, RpcError> {
    if format == SchemaFormat::Yang {
        if let Some(path) = module.filepath().filter(|p| p.ends_with(".yang")) {
            if let Ok(text) = std::fs::read_to_string(path) {
                return Ok(text);
            }
        }
    }
    use libyang5_sys as ffi;
    let out_format = match format {
        SchemaFormat::Yang => ffi::LYS_OUTFORMAT::LYS_OUT_YANG,
        SchemaFormat::Yin => ffi::LYS_OUTFORMAT::LYS_OUT_YIN,
    };
    let mut out: *mut std::os::raw::c_char = std::ptr::null_mut();
    // SAFETY: a module of the live (leaked) context; libyang allocates
    // `out` with malloc, freed below.
    let ret = unsafe { ffi::lys_print_mem(&mut out, module.as_raw(), out_format, 0) };
    if ret != ffi::LY_ERR::LY_SUCCESS || out.is_null() {
        return Err(RpcError::operation_failed(format!(
            "cannot print the schema of {}",
            module.name()
        )));
    }
    // SAFETY: a NUL-terminated string libyang allocated.
    let text = unsafe { std::ffi::CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: allocated by libyang with malloc, not used after this.
    unsafe { libc::free(out as *mut libc::c_void) };
    Ok(text)
}
