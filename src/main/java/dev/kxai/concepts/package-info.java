/**
 * Concept bottleneck models: a named layer whose units are human concepts. Concept values per
 * example, concept attributions (layer IG at the concept layer, in {@code dev.kxai.attr}), and
 * interventions: the model's tail run from concept values a person sets.
 */
package dev.kxai.concepts;
