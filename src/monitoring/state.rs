//! The state data this module adds to `<get>`: `/ncm:netconf-state`
//! (RFC 6022 §2) and the YANG library, `/yanglib:yang-library` (RFC 8525)
//! with the deprecated `/yanglib:modules-state` (RFC 7895) that libyang
//! generates alongside.

use std::fmt::Write as _;
use std::sync::OnceLock;

use yang5::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};

use super::{date_and_time, schemas, Monitor};
use crate::datastore::Datastores;
use crate::protocol::error::RpcError;
use crate::protocol::ext::NCM_NS;
use crate::protocol::rpc::Datastore;
use crate::protocol::xml::escape_text;
use crate::schema::Schema;

pub const YANG_LIBRARY_REVISION: &str = "2019-01-04";
pub const YANG_LIBRARY_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-yang-library";
pub const DATASTORES_NS: &str = "urn:ietf:params:xml:ns:yang:ietf-datastores";

/// The conventional configuration datastores this server has.
pub const DATASTORES: &[Datastore] =
    &[Datastore::Running, Datastore::Candidate, Datastore::Startup];

/// Every datastore (RFC 8342) the server has, as the YANG library lists
/// them: the conventional ones plus NMDA's intended and operational
/// (readable with get-data).
pub const YANG_LIBRARY_DATASTORES: &[&str] =
    &["running", "candidate", "startup", "intended", "operational"];

/// The raw libyang context of the schema (yang5 keeps it private; every
/// module points back at it).
fn raw_ctx(schema: &Schema) -> Option<*const libyang5_sys::ly_ctx> {
    let m = schema.ctx.modules(false).next()?;
    // SAFETY: a module of a live context; `ctx` is its mandatory back pointer.
    Some(unsafe { (*m.as_raw()).ctx as *const _ })
}

/// The YANG library content-id: libyang's hash of the module set (the
/// context never changes after start, so neither does the id).
pub fn content_id(schema: &Schema) -> String {
    match raw_ctx(schema) {
        // SAFETY: a valid context pointer.
        Some(ctx) => unsafe { libyang5_sys::ly_ctx_get_modules_hash(ctx) }.to_string(),
        None => "0".into(),
    }
}

/// The YANG library data as XML: libyang generates the module set; we add
/// the datastores (RFC 8525 §3). Computed once.
pub fn yang_library_xml(schema: &Schema) -> Result<&'static str, RpcError> {
    static CACHE: OnceLock<String> = OnceLock::new();
    if let Some(s) = CACHE.get() {
        return Ok(s);
    }
    let xml = generate_yang_library(schema)?;
    Ok(CACHE.get_or_init(|| xml))
}

fn generate_yang_library(schema: &Schema) -> Result<String, RpcError> {
    use libyang5_sys as ffi;
    let fail = |what: &str| RpcError::operation_failed(format!("YANG library: {what}"));
    let ctx = raw_ctx(schema).ok_or_else(|| fail("no modules"))?;
    let id = content_id(schema);
    let id = std::ffi::CString::new(id).map_err(|_| fail("bad content-id"))?;
    let mut root: *mut ffi::lyd_node = std::ptr::null_mut();
    // SAFETY: valid context; the format "%s" takes one C string argument.
    let ret = unsafe { ffi::ly_ctx_get_yanglib_data(ctx, &mut root, c"%s".as_ptr(), id.as_ptr()) };
    if ret != ffi::LY_ERR::LY_SUCCESS || root.is_null() {
        return Err(fail("libyang cannot generate the data"));
    }
    let mut out: *mut std::os::raw::c_char = std::ptr::null_mut();
    let flags = ffi::LYD_PRINT_SIBLINGS | ffi::LYD_PRINT_SHRINK;
    // SAFETY: `root` is the tree libyang just gave us; we free it below.
    let ret = unsafe { ffi::lyd_print_mem(&mut out, root, DataFormat::XML as u32, flags) };
    // SAFETY: we own `root`.
    unsafe { ffi::lyd_free_all(root) };
    if ret != ffi::LY_ERR::LY_SUCCESS || out.is_null() {
        return Err(fail("cannot print the data"));
    }
    // SAFETY: a NUL-terminated string libyang allocated with malloc.
    let mut xml = unsafe { std::ffi::CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: allocated by libyang with malloc, not used after this.
    unsafe { libc::free(out as *mut libc::c_void) };
    // The datastores: a second <yang-library> merged by the parser's caller
    // would be a duplicate instance, so splice them into libyang's element.
    let mut ds = String::new();
    for d in YANG_LIBRARY_DATASTORES {
        let _ = write!(
            ds,
            "<datastore><name xmlns:ds=\"{DATASTORES_NS}\">ds:{d}</name><schema>complete</schema></datastore>"
        );
    }
    let close = "</yang-library>";
    match xml.rfind(close) {
        Some(i) => xml.insert_str(i, &ds),
        None => return Err(fail("no yang-library in libyang's data")),
    }
    Ok(xml)
}

/// `/netconf-state` (RFC 6022 §2) as XML.
pub fn netconf_state_xml(schema: &Schema, ds: &Datastores, monitor: &Monitor) -> String {
    let mut x = format!("<netconf-state xmlns=\"{NCM_NS}\"><capabilities>");
    for c in monitor.capabilities() {
        let _ = write!(x, "<capability>{}</capability>", escape_text(c));
    }
    x.push_str("</capabilities><datastores>");
    for d in DATASTORES {
        let _ = write!(x, "<datastore><name>{}</name>", d.name());
        if let Some((session, since)) = ds.lock_info(*d) {
            let _ = write!(
                x,
                "<locks><global-lock><locked-by-session>{session}</locked-by-session>\
                 <locked-time>{}</locked-time></global-lock></locks>",
                date_and_time(since)
            );
        }
        x.push_str("</datastore>");
    }
    x.push_str("</datastores><schemas>");
    for m in schemas::list(schema) {
        for format in ["yang", "yin"] {
            let _ = write!(
                x,
                "<schema><identifier>{}</identifier><version>{}</version><format>{format}</format>\
                 <namespace>{}</namespace><location>NETCONF</location></schema>",
                escape_text(&m.name),
                escape_text(m.revision.as_deref().unwrap_or("")),
                escape_text(&m.namespace)
            );
        }
    }
    x.push_str("</schemas><sessions>");
    for (id, s) in monitor.sessions() {
        let _ = write!(
            x,
            "<session><session-id>{id}</session-id><transport>netconf-ssh</transport>\
             <username>{}</username>",
            escape_text(&s.user)
        );
        if let Some(h) = &s.source_host {
            let _ = write!(x, "<source-host>{}</source-host>", escape_text(h));
        }
        let c = s.counters;
        let _ = write!(
            x,
            "<login-time>{}</login-time><in-rpcs>{}</in-rpcs><in-bad-rpcs>{}</in-bad-rpcs>\
             <out-rpc-errors>{}</out-rpc-errors><out-notifications>{}</out-notifications></session>",
            date_and_time(s.login),
            c.in_rpcs,
            c.in_bad_rpcs,
            c.out_rpc_errors,
            c.out_notifications
        );
    }
    let st = monitor.statistics();
    let _ = write!(
        x,
        "</sessions><statistics><netconf-start-time>{}</netconf-start-time>\
         <in-bad-hellos>{}</in-bad-hellos><in-sessions>{}</in-sessions>\
         <dropped-sessions>{}</dropped-sessions><in-rpcs>{}</in-rpcs>\
         <in-bad-rpcs>{}</in-bad-rpcs><out-rpc-errors>{}</out-rpc-errors>\
         <out-notifications>{}</out-notifications></statistics></netconf-state>",
        date_and_time(monitor.start_time()),
        st.in_bad_hellos,
        st.in_sessions,
        st.dropped_sessions,
        st.counters.in_rpcs,
        st.counters.in_bad_rpcs,
        st.counters.out_rpc_errors,
        st.counters.out_notifications
    );
    x
}

/// The server's own state data (monitoring and YANG library) as a tree, to
/// merge into what `<get>` returns.
pub fn state_tree(
    schema: &Schema,
    ds: &Datastores,
    monitor: &Monitor,
) -> Result<DataTree<'static>, RpcError> {
    let mut xml = netconf_state_xml(schema, ds, monitor);
    xml.push_str(yang_library_xml(schema)?);
    xml.push_str(&agent_state_xml(schema, ds));
    DataTree::parse_string(
        schema.ctx,
        &xml,
        DataFormat::XML,
        DataParserFlags::NO_VALIDATION | DataParserFlags::STRICT,
        DataValidationFlags::empty(),
    )
    .map_err(|e| RpcError::operation_failed(format!("server state data: {e}")))
}

pub const AGENT_NS: &str = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent";

/// `/wgna:agent` (our `wgnetconf-agent` module, when it is loaded): how
/// the agent booted, and what stored data it had to drop then.
fn agent_state_xml(schema: &Schema, ds: &Datastores) -> String {
    if schema.module_by_ns(AGENT_NS).is_none() {
        return String::new();
    }
    let (source, problem) = ds.boot_status();
    let mut xml = format!(
        "<agent xmlns=\"{AGENT_NS}\"><boot><source>{}</source>",
        source.name()
    );
    if let Some(p) = problem {
        let _ = write!(xml, "<error>{}</error>", escape_text(p));
    }
    xml.push_str("</boot></agent>");
    xml
}
