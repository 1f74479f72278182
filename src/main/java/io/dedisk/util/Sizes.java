package io.dedisk.util;

import io.dedisk.DediskException.InvalidRequestException;
import java.util.Locale;

/** Parses and prints byte sizes the way operators write them: 1048576, 512M, 10G, 1.5T (binary units). */
public final class Sizes {
    private Sizes() {}

    public static long parse(String text) {
        String s = text.trim().toUpperCase(Locale.ROOT);
        if (s.endsWith("IB")) s = s.substring(0, s.length() - 2);
        else if (s.endsWith("B") && s.length() > 1 && !Character.isDigit(s.charAt(s.length() - 2))) {
            s = s.substring(0, s.length() - 1);
        }
        long unit = 1;
        if (!s.isEmpty()) {
            int shift = switch (s.charAt(s.length() - 1)) {
                case 'K' -> 10; case 'M' -> 20; case 'G' -> 30; case 'T' -> 40; case 'P' -> 50;
                default -> 0;
            };
            if (shift > 0) { unit = 1L << shift; s = s.substring(0, s.length() - 1); }
        }
        try {
            java.math.BigDecimal v = new java.math.BigDecimal(s).multiply(java.math.BigDecimal.valueOf(unit));
            if (v.signum() < 0) throw new InvalidRequestException("size must not be negative: '" + text + "'");
            return v.toBigIntegerExact().longValueExact();
        } catch (NumberFormatException | ArithmeticException e) {
            throw new InvalidRequestException("invalid size '" + text + "': expected bytes or a number with K, M, G, T or P (e.g. 10G, 512M)");
        }
    }

    public static String format(long bytes) {
        if (bytes < 1024) return bytes + " B";
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int i = -1;
        while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
        return String.format(Locale.ROOT, "%.1f %s", v, units[i]);
    }
}
