package org.mnv1tk.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.util.List;
import org.junit.BeforeClass;
import org.junit.Test;

/** The core against the toolkit's golden vectors: preprocessing, int8 quantization, top-5, the self-check. */
public class GoldenVectorsTest {
    private static BundleDir bundle;

    @BeforeClass
    public static void load() throws Exception {
        bundle = BundleDir.load();
        assertFalse("models.json lists no models", bundle.index.models.isEmpty());
    }

    @Test
    public void preprocessingMatchesThePythonTensorsOnRealImages() throws Exception {
        int checked = 0;
        double worst = 0;
        for (ModelEntry entry : bundle.index.models) {
            Preprocessor preprocessor = new Preprocessor(entry.input);
            List<GoldenSet.Sample> samples = bundle.golden.forModel(entry.id).samples;
            assertEquals(bundle.golden.images.size(), samples.size());
            for (int i = 0; i < samples.size(); i++) {
                GoldenSet.Image image = bundle.golden.images.get(i);
                float[] expected = GoldenSet.floats(bundle.read(samples.get(i).tensor));
                float[] actual = preprocessor.toFloatTensor(bundle.read(image.rgba), image.width, image.height);
                assertEquals(expected.length, actual.length);
                double diff = SelfCheck.maxAbsDiff(expected, actual);
                assertTrue(entry.id + " " + image.file + ": max diff " + diff, diff <= 1e-3);
                worst = Math.max(worst, diff);
                if (samples.get(i).input != null) {
                    assertArrayEquals(entry.id + " " + image.file + " int8 input",
                            bundle.read(samples.get(i).input), preprocessor.toInt8Tensor(bundle.read(image.rgba),
                                    image.width, image.height));
                }
                checked++;
            }
        }
        assertTrue(checked >= 2);
        System.out.println("preprocessing: max |Java - Python| = " + worst + " over " + checked + " tensors");
    }

    @Test
    public void bilinearResizeIsOpenCvBitForBit() throws Exception {
        assertTrue(bundle.golden.resizeProbes.size() >= 8);
        for (GoldenSet.ResizeProbe probe : bundle.golden.resizeProbes) {
            byte[] actual = Preprocessor.resizeLinear(bundle.read(probe.src), probe.width, probe.height,
                    probe.outWidth, probe.outHeight);
            assertArrayEquals(probe.width + "x" + probe.height + " -> " + probe.outWidth + "x" + probe.outHeight,
                    bundle.read(probe.expected), actual);
        }
    }

    @Test
    public void topFiveIsThePythonTopFive() throws Exception {
        int checked = 0;
        for (ModelEntry entry : bundle.index.models) {
            for (GoldenSet.Sample sample : bundle.golden.forModel(entry.id).samples) {
                if (sample.logits != null) {
                    float[] logits = GoldenSet.floats(bundle.read(sample.logits));
                    assertEquals(entry.numClasses, logits.length);
                    assertArrayEquals(entry.id, sample.top5, TopK.indices(logits, 5));
                    checked++;
                }
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void int8QuantizationRoundsAndSaturatesLikeTheToolkit() throws Exception {
        int int8Models = 0;
        for (ModelEntry entry : bundle.index.models) {
            GoldenSet.ModelGolden golden = bundle.golden.forModel(entry.id);
            if (entry.input.inputQuant == null) {
                continue;
            }
            int8Models++;
            float[] probe = GoldenSet.floats(bundle.read(golden.quantProbe));
            assertArrayEquals(entry.id, bundle.read(golden.quantExpected), entry.input.inputQuant.quantize(probe));
            if (entry.outputQuant != null) {
                byte[] all = new byte[256];
                for (int q = -128; q < 128; q++) {
                    all[q + 128] = (byte) q;
                }
                float[] expected = GoldenSet.floats(bundle.read(golden.dequantProbe));
                float[] actual = entry.outputQuant.dequantize(all);
                for (int i = 0; i < 256; i++) {
                    assertEquals(Float.floatToIntBits(expected[i]), Float.floatToIntBits(actual[i]));
                }
            }
        }
        assertTrue("the bundle has no int8-input model", int8Models > 0);
    }

    @Test
    public void cardsAndLabelsAgreeWithTheIndex() throws Exception {
        for (ModelEntry entry : bundle.index.models) {
            ModelCard card = ModelCard.parse(bundle.readText(entry.cardFile));
            assertEquals(entry.precision, card.precision);
            assertEquals(entry.input.imageSize, card.input.imageSize);
            assertEquals(entry.input.layout, card.input.layout);
            assertArrayEquals(entry.input.mean, card.input.mean, 0f);
            assertArrayEquals(entry.input.std, card.input.std, 0f);
            assertEquals(entry.input.cropPct, card.input.cropPct, 0.0);
            assertEquals(entry.input.inputQuant == null, card.input.inputQuant == null);
            assertArrayEquals(card.labels, Labels.parse(bundle.readText(entry.labelsFile)));
            assertNotNull(bundle.read(entry.file));
        }
    }

    @Test
    public void selfCheckPassesOnTheHostLogitsAndFailsOnWrongOnes() throws Exception {
        for (ModelEntry entry : bundle.index.models) {
            GoldenSet.ModelGolden golden = bundle.golden.forModel(entry.id);
            if (golden.samples.get(0).logits == null) {
                continue;
            }
            SelfCheck good = SelfCheck.run(bundle, bundle.golden, entry, new ReplayClassifier(golden, false));
            assertTrue(entry.id, good.passed);
            assertEquals(Double.POSITIVE_INFINITY, good.rows.get(0).logits.sqnrDb, 0);
            SelfCheck bad = SelfCheck.run(bundle, bundle.golden, entry, new ReplayClassifier(golden, true));
            assertFalse(entry.id, bad.passed);
        }
    }

    /** Answers each golden input with the host's logits for it (or with those logits reversed). */
    private static final class ReplayClassifier implements Classifier {
        private final GoldenSet.ModelGolden golden;
        private final boolean reversed;

        ReplayClassifier(GoldenSet.ModelGolden golden, boolean reversed) {
            this.golden = golden;
            this.reversed = reversed;
        }

        @Override
        public float[] run(ModelInput input) throws Exception {
            for (GoldenSet.Sample sample : golden.samples) {
                boolean same = input.isInt8() ? java.util.Arrays.equals(input.int8(), bundle.read(sample.input))
                        : java.util.Arrays.equals(input.floats(), GoldenSet.floats(bundle.read(sample.tensor)));
                if (same) {
                    float[] logits = GoldenSet.floats(bundle.read(sample.logits));
                    if (reversed) {
                        for (int i = 0; i < logits.length / 2; i++) {
                            float t = logits[i];
                            logits[i] = logits[logits.length - 1 - i];
                            logits[logits.length - 1 - i] = t;
                        }
                    }
                    return logits;
                }
            }
            throw new AssertionError("input is none of the golden inputs");
        }

        @Override
        public String acceleratorUsed() {
            return "cpu";
        }

        @Override
        public String fallbackNotice() {
            return null;
        }

        @Override
        public void close() {
        }
    }
}
