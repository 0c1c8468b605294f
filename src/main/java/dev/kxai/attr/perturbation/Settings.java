package dev.kxai.attr.perturbation;

import dev.kxai.InvalidInputException;
import dev.kxai.attr.Baseline;
import dev.kxai.attr.ChunkPolicy;
import dev.kxai.attr.Progress;
import dev.kxai.tensor.Tensor;
import java.util.List;
import java.util.Map;

/**
 * What every perturbation method takes, with Captum's names: {@code baselines} (one for all
 * attributed inputs or one per input; default zeros), {@code feature_mask} (by input name),
 * {@code perturbations_per_eval} (at most that many perturbations of the batch per forward pass;
 * default: as many as the memory budget allows), {@code internal_batch_size} (rows per pass),
 * and a seed for the methods that sample.
 */
public record Settings(List<Baseline> baselines, Map<String, Tensor> featureMasks, Integer perturbationsPerEval,
        Integer internalBatchSize, long seed, Progress progress) {
    public Settings {
        baselines = List.copyOf(baselines);
        featureMasks = Map.copyOf(featureMasks);
        if (baselines.isEmpty()) {
            throw new InvalidInputException("no baseline given");
        }
        if (perturbationsPerEval != null && perturbationsPerEval < 1) {
            throw new InvalidInputException("perturbations_per_eval must be at least 1, got " + perturbationsPerEval);
        }
        new ChunkPolicy(internalBatchSize);
    }

    /** Zero baselines, no masks, the memory budget, seed 0. */
    public static Settings defaults() {
        return new Settings(List.of(Baseline.zeros()), Map.of(), null, null, 0L, Progress.NONE);
    }

    public Settings baselines(Baseline... b) {
        return new Settings(List.of(b), featureMasks, perturbationsPerEval, internalBatchSize, seed, progress);
    }

    public Settings featureMasks(Map<String, Tensor> masks) {
        return new Settings(baselines, masks, perturbationsPerEval, internalBatchSize, seed, progress);
    }

    public Settings perturbationsPerEval(Integer n) {
        return new Settings(baselines, featureMasks, n, internalBatchSize, seed, progress);
    }

    public Settings internalBatchSize(Integer rows) {
        return new Settings(baselines, featureMasks, perturbationsPerEval, rows, seed, progress);
    }

    public Settings seed(long s) {
        return new Settings(baselines, featureMasks, perturbationsPerEval, internalBatchSize, s, progress);
    }

    public Settings progress(Progress p) {
        return new Settings(baselines, featureMasks, perturbationsPerEval, internalBatchSize, seed, p);
    }

    /** Rows per forward pass: internal_batch_size, else perturbations_per_eval × batch, else the budget. */
    ChunkPolicy chunks(int batch) {
        if (internalBatchSize != null) {
            return new ChunkPolicy(internalBatchSize);
        }
        return new ChunkPolicy(perturbationsPerEval == null ? null : perturbationsPerEval * batch);
    }
}
