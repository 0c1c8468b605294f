/**
 * Human-facing output for a single explained example: pictures of an attribution next to its
 * input ({@link dev.kxai.report.AttributionImage}) and short numeric summaries of where the
 * attribution mass sits ({@link dev.kxai.report.AttributionSummary}); and line plots of the
 * metrics' deletion and insertion curves ({@link dev.kxai.report.CurvePlot}).
 *
 * <p>The pictures of examples work on one example in CHW layout (channels x height x width,
 * row-major) held in a plain {@code float[]}; everything uses only the JDK and runs headless. Computing attributions
 * belongs in {@code dev.kxai.attr}; this package only presents them.
 */
package dev.kxai.report;
