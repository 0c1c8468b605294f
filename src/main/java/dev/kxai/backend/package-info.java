/**
 * The backend SPI: {@link dev.kxai.backend.Backend}s run {@link dev.kxai.graph.Graph}s as
 * {@link dev.kxai.backend.ModelRunner}s; {@link dev.kxai.backend.Backends} picks one.
 */
package dev.kxai.backend;
