//! Lua numbers as text the way Redis's C code prints them: `%.17g` for command arguments
//! (no precision lost), `%.14g` for cjson (Lua's own default).

/// `value` formatted with C's `%.<precision>g`.
pub fn format_g(value: f64, precision: u8) -> String {
    if value.is_nan() {
        return if value.is_sign_negative() {
            "-nan"
        } else {
            "nan"
        }
        .into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    let fmt = format!("%.{precision}g\0");
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for its length, which snprintf is told and never passes;
    // the format is NUL-terminated and takes exactly one double.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            fmt.as_ptr() as *const libc::c_char,
            value,
        )
    };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_c_printf() {
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1.0, 17), "1");
        assert_eq!(format_g(1.5, 17), "1.5");
        assert_eq!(format_g(1e20, 17), "1e+20");
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(f64::INFINITY, 17), "inf");
    }
}
