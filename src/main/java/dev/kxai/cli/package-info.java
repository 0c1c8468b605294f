/** The {@code kxai} command line (picocli): explain, metrics, validate, info, bench. */
package dev.kxai.cli;
