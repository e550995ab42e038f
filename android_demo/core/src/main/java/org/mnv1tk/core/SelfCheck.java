package org.mnv1tk.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The app's self-check: each golden image is preprocessed here (on the phone) and compared with the host's
 * tensor, then the host's own input runs through the loaded model and its logits are compared with the host's.
 */
public final class SelfCheck {
    /** Largest difference allowed between this preprocessing and the toolkit's, on the normalised scale. */
    public static final double TENSOR_TOLERANCE = 1e-3;

    /** One golden image. */
    public static final class Row {
        public final String image;
        public final double tensorMaxDiff;
        public final GoldenComparison logits; // null when the bundle has no host logits for this model

        Row(String image, double tensorMaxDiff, GoldenComparison logits) {
            this.image = image;
            this.tensorMaxDiff = tensorMaxDiff;
            this.logits = logits;
        }
    }

    public final List<Row> rows;
    public final boolean passed;

    private SelfCheck(List<Row> rows, boolean passed) {
        this.rows = Collections.unmodifiableList(rows);
        this.passed = passed;
    }

    public static SelfCheck run(AssetSource assets, GoldenSet golden, ModelEntry entry, Classifier classifier)
            throws Exception {
        GoldenSet.ModelGolden vectors = golden.forModel(entry.id);
        Preprocessor preprocessor = new Preprocessor(entry.input);
        List<Row> rows = new ArrayList<>();
        boolean passed = true;
        for (int i = 0; i < vectors.samples.size(); i++) {
            GoldenSet.Sample sample = vectors.samples.get(i);
            GoldenSet.Image image = golden.images.get(i);
            float[] hostTensor = GoldenSet.floats(assets.read(sample.tensor));
            float[] tensor = preprocessor.toFloatTensor(assets.read(image.rgba), image.width, image.height);
            double tensorDiff = maxAbsDiff(hostTensor, tensor);
            GoldenComparison comparison = null;
            if (sample.logits != null) {
                ModelInput input = sample.input != null ? ModelInput.ofInt8(assets.read(sample.input))
                        : ModelInput.ofFloats(hostTensor);
                comparison = GoldenComparison.compare(GoldenSet.floats(assets.read(sample.logits)), classifier.run(input));
                passed &= comparison.agrees(entry.precision, classifier.acceleratorUsed());
            }
            passed &= tensorDiff <= TENSOR_TOLERANCE;
            rows.add(new Row(image.file, tensorDiff, comparison));
        }
        return new SelfCheck(rows, passed);
    }

    static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            return Double.POSITIVE_INFINITY;
        }
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs((double) a[i] - b[i]));
        }
        return max;
    }
}
