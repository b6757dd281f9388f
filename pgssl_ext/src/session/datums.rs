//! Datums kept per connection and returned as copies: a varlena built once
//! (with the server's own input function) and copied into the caller's
//! memory context at each call, which is all a repeated call then costs.

use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::{AnyNumeric, IntoDatum, JsonB};

/// The bytes of a varlena datum, header included.
///
/// # Safety
/// `datum` points to a valid, detoasted varlena.
unsafe fn varlena_bytes(datum: pg_sys::Datum) -> Box<[u8]> {
    let ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: a valid varlena, as the caller guarantees.
    let len = unsafe { pgrx::varlena::varsize_any(ptr) };
    // SAFETY: the varlena is `len` bytes long.
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.into()
}

/// A copy of `bytes` in the current memory context, as a datum.
fn palloc_copy(bytes: &[u8]) -> pg_sys::Datum {
    // SAFETY: palloc returns `len` writable bytes (or raises an ERROR); the
    // copy fills them from a slice of that length.
    unsafe {
        let dest = pg_sys::palloc(bytes.len()).cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), dest, bytes.len());
        pg_sys::Datum::from(dest)
    }
}

/// A jsonb value's bytes, built once from JSON with `jsonb_in`.
pub(crate) fn jsonb_bytes(value: &serde_json::Value) -> Box<[u8]> {
    let datum = JsonB(value.clone())
        .into_datum()
        .expect("jsonb_in returns a value");
    // SAFETY: jsonb_in returns a freshly built, untoasted jsonb.
    unsafe { varlena_bytes(datum) }
}

/// A numeric's bytes, from its decimal text with `numeric_in`.
pub(crate) fn numeric_bytes(decimal: &str) -> Option<Box<[u8]>> {
    let datum = AnyNumeric::try_from(decimal).ok()?.into_datum()?;
    // SAFETY: AnyNumeric's datum is a plain copy of a detoasted numeric.
    Some(unsafe { varlena_bytes(datum) })
}

macro_rules! cached_varlena {
    ($(#[$doc:meta])* $name:ident, $oid:expr, $sql:expr) => {
        $(#[$doc])*
        pub(crate) struct $name(pub &'static [u8]);

        impl IntoDatum for $name {
            fn into_datum(self) -> Option<pg_sys::Datum> {
                Some(palloc_copy(self.0))
            }

            fn type_oid() -> pg_sys::Oid {
                $oid
            }
        }

        // SAFETY: the datum is a complete varlena of the declared type, copied
        // into the memory context the function was called in.
        unsafe impl BoxRet for $name {
            unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
                // SAFETY: a valid datum of the function's return type.
                unsafe { fcinfo.return_raw_datum(palloc_copy(self.0)) }
            }
        }

        // SAFETY: it is exactly a value of that SQL type, as JsonB and
        // AnyNumeric declare theirs.
        unsafe impl SqlTranslatable for $name {
            const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!($name);
            const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
            const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok($sql);
            const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Ok(ReturnsRef::One($sql));
        }
    };
}

cached_varlena!(
    /// A `jsonb` datum kept for the connection.
    CachedJsonb,
    pg_sys::JSONBOID,
    SqlMappingRef::literal("jsonb")
);

cached_varlena!(
    /// A `numeric` datum kept for the connection.
    CachedNumeric,
    pg_sys::NUMERICOID,
    SqlMappingRef::Numeric {
        precision: None,
        scale: None
    }
);
