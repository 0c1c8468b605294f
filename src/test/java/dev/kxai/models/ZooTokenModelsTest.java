package dev.kxai.models;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kxai.TestData;
import dev.kxai.validate.ReferenceValidator;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The zoo's token models small enough for the suite (src/test/resources/models/zoo): a BERT as
 * Hugging Face writes it — three int64 inputs, two of them additional (mask, token types), the
 * extended mask built from finfo.min, opset 17 — and a GPT-2 sequence classifier as Optimum exports it
 * (batch and sequence length free, fixed here from the case's input files; the last real token picked with
 * {@code logits[torch.arange(B), lengths]}), validated like reference cases on the CPU.
 */
class ZooTokenModelsTest {
    @Test
    void bertTinyPassesItsLogitsAndLayerIgCases() {
        ReferenceValidator.Summary s = new ReferenceValidator("cpu").run(TestData.exported("zoo"), r -> { });
        List<String> passed = s.results().stream().filter(r -> r.status() == ReferenceValidator.Status.PASS)
                .map(r -> r.model() + "/" + r.id()).toList();
        assertEquals(List.of("bert_tiny/logits", "bert_tiny/layer_ig_embedding_gausslegendre_8",
                "gpt_classifier/logits", "gpt_classifier/layer_ig_embedding_gausslegendre_8"), passed, s.line());
        assertEquals(0, s.failed(), s.line());
    }
}
