/** The {@code kxai} command line (picocli): explain, validate, info. */
package dev.kxai.cli;
