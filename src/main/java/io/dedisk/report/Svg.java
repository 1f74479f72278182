package io.dedisk.report;

import io.dedisk.util.Check;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.DoubleFunction;

/**
 * Plots as inline SVG text, with no script and no library: line charts over time and grouped bar charts, with
 * axes, "nice" ticks, a legend and a tooltip per point. Every data point is an element carrying its value
 * ({@code data-series}, {@code data-x}/{@code data-category}, {@code data-v}), so tests and scripts can read
 * the numbers back from the page.
 *
 * Pure functions of their arguments; any thread. Invariant: NaN and infinite values are left out (a gap), never
 * drawn at a made-up position; a plot with no finite value still draws its frame and says "no data".
 */
final class Svg {
    static final int WIDTH = 1000;
    static final int HEIGHT = 300;
    private static final int LEFT = 90, RIGHT = 20, TOP = 20, BOTTOM = 60;
    /** Points drawn per series at most; longer series are thinned evenly (the last point always kept). */
    static final int MAX_POINTS = 400;
    static final String[] COLORS = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

    record Point(double x, double y) {}

    record Series(String name, List<Point> points) {}

    /** One bar group's values, one per series (NaN: no bar). */
    record Group(String category, double[] values) {}

    private Svg() {}

    static String esc(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }

    static String num(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v);
        return Double.toString(v); // exact: the page's numbers read back as the values plotted
    }

    private static String px(double v) { return String.format(Locale.ROOT, "%.1f", v); }

    /** A tick step of 1, 2 or 5 × 10^k giving about {@code count} ticks over span. */
    static double niceStep(double span, int count) {
        Check.that(span > 0 && count > 0, "tick span %s count %d", span, count);
        double raw = span / count;
        double mag = Math.pow(10, Math.floor(Math.log10(raw)));
        double f = raw / mag;
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    }

    /** Ticks for byte values step in powers of two (1 KiB, 4 MiB...) so their labels read well. */
    static double byteStep(double span, int count) {
        double raw = span / count;
        double step = 1;
        while (step * 2 <= raw) step *= 2;
        return step < raw ? step * 2 : step;
    }

    private static List<Point> thin(List<Point> points) {
        List<Point> finite = new ArrayList<>();
        for (Point p : points) if (Double.isFinite(p.x()) && Double.isFinite(p.y())) finite.add(p);
        if (finite.size() <= MAX_POINTS) return finite;
        List<Point> out = new ArrayList<>(MAX_POINTS);
        for (int i = 0; i < MAX_POINTS - 1; i++) out.add(finite.get((int) ((long) i * (finite.size() - 1) / (MAX_POINTS - 1))));
        out.add(finite.getLast());
        return out;
    }

    static String timeLabel(double millis, double span) {
        DateTimeFormatter f = span < 3_600_000 ? DateTimeFormatter.ofPattern("HH:mm:ss") : span < 172_800_000
                ? DateTimeFormatter.ofPattern("MM-dd HH:mm") : DateTimeFormatter.ofPattern("yyyy-MM-dd");
        return f.format(Instant.ofEpochMilli((long) millis).atZone(ZoneOffset.UTC));
    }

    private static void frame(StringBuilder b, String id, String title) {
        b.append("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"").append(esc(id)).append("\" class=\"plot\" width=\"").append(WIDTH)
                .append("\" height=\"").append(HEIGHT).append("\" viewBox=\"0 0 ").append(WIDTH).append(' ').append(HEIGHT)
                .append("\" role=\"img\" aria-label=\"").append(esc(title)).append("\">\n<title>").append(esc(title)).append("</title>\n")
                .append("<rect x=\"0\" y=\"0\" width=\"").append(WIDTH).append("\" height=\"").append(HEIGHT).append("\" fill=\"#ffffff\"/>\n");
    }

    private static void yAxis(StringBuilder b, double yMax, boolean bytes, boolean integers, DoubleFunction<String> format) {
        double step = bytes ? byteStep(yMax, 5) : niceStep(yMax, 5);
        if (integers) step = Math.max(1, Math.rint(step));
        double plotH = HEIGHT - TOP - BOTTOM;
        for (double t = 0; t <= yMax * 1.0001; t += step) {
            double y = TOP + plotH - t / yMax * plotH;
            b.append("<line x1=\"").append(LEFT).append("\" x2=\"").append(WIDTH - RIGHT).append("\" y1=\"").append(px(y)).append("\" y2=\"").append(px(y))
                    .append("\" stroke=\"#e0e0e0\"/>\n<text x=\"").append(LEFT - 6).append("\" y=\"").append(px(y + 4))
                    .append("\" text-anchor=\"end\" font-size=\"12\" fill=\"#333\">").append(esc(format.apply(t))).append("</text>\n");
        }
        b.append("<line x1=\"").append(LEFT).append("\" x2=\"").append(LEFT).append("\" y1=\"").append(TOP).append("\" y2=\"").append(HEIGHT - BOTTOM)
                .append("\" stroke=\"#333\"/>\n<line x1=\"").append(LEFT).append("\" x2=\"").append(WIDTH - RIGHT).append("\" y1=\"").append(HEIGHT - BOTTOM)
                .append("\" y2=\"").append(HEIGHT - BOTTOM).append("\" stroke=\"#333\"/>\n");
    }

    private static void legend(StringBuilder b, List<String> names) {
        double x = LEFT;
        for (int i = 0; i < names.size(); i++) {
            b.append("<rect x=\"").append(px(x)).append("\" y=\"").append(HEIGHT - 22).append("\" width=\"12\" height=\"12\" fill=\"")
                    .append(COLORS[i % COLORS.length]).append("\"/><text x=\"").append(px(x + 16)).append("\" y=\"").append(HEIGHT - 12)
                    .append("\" font-size=\"13\" fill=\"#222\">").append(esc(names.get(i))).append("</text>\n");
            x += 30 + 7.5 * names.get(i).length();
        }
    }

    private static double top(double max) { return max <= 0 ? 1 : max * 1.1; }

    /**
     * A line chart of series over time (x = epoch milliseconds). {@code bytes}: the y axis has binary-unit ticks.
     * A single point per series is drawn as a dot.
     */
    static String timeChart(String id, String title, List<Series> series, boolean bytes, DoubleFunction<String> format) {
        List<List<Point>> drawn = new ArrayList<>();
        double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY, yMax = 0;
        for (Series s : series) {
            List<Point> pts = thin(s.points());
            drawn.add(pts);
            for (Point p : pts) {
                xMin = Math.min(xMin, p.x());
                xMax = Math.max(xMax, p.x());
                yMax = Math.max(yMax, p.y());
            }
        }
        StringBuilder b = new StringBuilder(4096);
        frame(b, id, title);
        if (xMin > xMax) {
            b.append("<text x=\"").append(WIDTH / 2).append("\" y=\"").append(HEIGHT / 2).append("\" text-anchor=\"middle\" font-size=\"16\" fill=\"#666\">no data</text>\n</svg>\n");
            return b.toString();
        }
        if (xMax - xMin < 10_000) { double mid = (xMin + xMax) / 2; xMin = mid - 5_000; xMax = mid + 5_000; } // at least 10 s wide
        else { double pad = (xMax - xMin) * 0.02; xMin -= pad; xMax += pad; }
        double yTop = top(yMax);
        yAxis(b, yTop, bytes, false, format);
        double plotW = WIDTH - LEFT - RIGHT, plotH = HEIGHT - TOP - BOTTOM, span = xMax - xMin;
        for (int i = 0; i <= 5; i++) {
            double t = xMin + span * i / 5, x = LEFT + plotW * i / 5;
            String anchor = i == 0 ? "start" : i == 5 ? "end" : "middle";
            b.append("<text x=\"").append(px(x)).append("\" y=\"").append(HEIGHT - BOTTOM + 18).append("\" text-anchor=\"").append(anchor).append("\" font-size=\"12\" fill=\"#333\">")
                    .append(esc(timeLabel(t, span))).append("</text>\n");
        }
        List<String> names = new ArrayList<>();
        for (int s = 0; s < series.size(); s++) {
            String color = COLORS[s % COLORS.length];
            names.add(series.get(s).name());
            StringBuilder line = new StringBuilder();
            StringBuilder dots = new StringBuilder();
            for (Point p : drawn.get(s)) {
                double x = LEFT + (p.x() - xMin) / span * plotW, y = TOP + plotH - p.y() / yTop * plotH;
                line.append(px(x)).append(',').append(px(y)).append(' ');
                dots.append("<circle class=\"pt\" cx=\"").append(px(x)).append("\" cy=\"").append(px(y)).append("\" r=\"3\" fill=\"").append(color)
                        .append("\" data-series=\"").append(esc(series.get(s).name())).append("\" data-x=\"").append(num(p.x()))
                        .append("\" data-v=\"").append(num(p.y())).append("\"><title>").append(esc(series.get(s).name())).append(' ')
                        .append(esc(timeLabel(p.x(), 0))).append(": ").append(esc(format.apply(p.y()))).append("</title></circle>\n");
            }
            if (drawn.get(s).size() > 1) {
                b.append("<polyline fill=\"none\" stroke=\"").append(color).append("\" stroke-width=\"2\" points=\"").append(line.toString().trim()).append("\"/>\n");
            }
            b.append(dots);
        }
        legend(b, names);
        return b.append("</svg>\n").toString();
    }

    /** A grouped bar chart: one group per category, one bar per series in it, each labelled with its value. */
    static String barChart(String id, String title, List<String> seriesNames, List<Group> groups, boolean integers, DoubleFunction<String> format) {
        double yMax = 0;
        for (Group g : groups) {
            Check.that(g.values().length == seriesNames.size(), "bar group %s has %d values for %d series", g.category(), g.values().length, seriesNames.size());
            for (double v : g.values()) if (Double.isFinite(v)) yMax = Math.max(yMax, v);
        }
        StringBuilder b = new StringBuilder(4096);
        frame(b, id, title);
        if (groups.isEmpty()) {
            b.append("<text x=\"").append(WIDTH / 2).append("\" y=\"").append(HEIGHT / 2).append("\" text-anchor=\"middle\" font-size=\"16\" fill=\"#666\">no data</text>\n</svg>\n");
            return b.toString();
        }
        double yTop = top(yMax);
        yAxis(b, yTop, false, integers, format);
        double plotW = WIDTH - LEFT - RIGHT, plotH = HEIGHT - TOP - BOTTOM;
        double groupW = plotW / groups.size();
        double barW = Math.min(60, groupW * 0.8 / seriesNames.size());
        for (int g = 0; g < groups.size(); g++) {
            Group group = groups.get(g);
            double gx = LEFT + g * groupW + (groupW - barW * seriesNames.size()) / 2;
            for (int s = 0; s < seriesNames.size(); s++) {
                double v = group.values()[s];
                if (!Double.isFinite(v)) continue;
                double h = v / yTop * plotH, x = gx + s * barW, y = TOP + plotH - h;
                b.append("<rect class=\"bar\" x=\"").append(px(x)).append("\" y=\"").append(px(y)).append("\" width=\"").append(px(barW * 0.92))
                        .append("\" height=\"").append(px(h)).append("\" fill=\"").append(COLORS[s % COLORS.length]).append("\" data-series=\"")
                        .append(esc(seriesNames.get(s))).append("\" data-category=\"").append(esc(group.category())).append("\" data-v=\"").append(num(v))
                        .append("\"><title>").append(esc(group.category())).append(", ").append(esc(seriesNames.get(s))).append(": ")
                        .append(esc(format.apply(v))).append("</title></rect>\n");
                if (barW >= 14) {
                    b.append("<text x=\"").append(px(x + barW * 0.46)).append("\" y=\"").append(px(y - 4)).append("\" text-anchor=\"middle\" font-size=\"11\" fill=\"#222\">")
                            .append(esc(format.apply(v))).append("</text>\n");
                }
            }
            b.append("<text x=\"").append(px(LEFT + g * groupW + groupW / 2)).append("\" y=\"").append(HEIGHT - BOTTOM + 18)
                    .append("\" text-anchor=\"middle\" font-size=\"12\" fill=\"#333\">").append(esc(group.category())).append("</text>\n");
        }
        legend(b, seriesNames);
        return b.append("</svg>\n").toString();
    }
}
