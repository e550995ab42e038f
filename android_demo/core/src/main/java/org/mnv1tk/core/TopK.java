package org.mnv1tk.core;

import java.util.ArrayList;
import java.util.List;

/** The k best classes, best first; equal scores keep the lower index first (numpy's stable argsort of -scores). */
public final class TopK {
    private TopK() {
    }

    public static int[] indices(float[] scores, int k) {
        int n = Math.min(k, scores.length);
        int[] best = new int[n];
        boolean[] taken = new boolean[scores.length];
        for (int r = 0; r < n; r++) {
            int pick = -1;
            for (int i = 0; i < scores.length; i++) {
                if (!taken[i] && (pick < 0 || scores[i] > scores[pick])) {
                    pick = i;
                }
            }
            taken[pick] = true;
            best[r] = pick;
        }
        return best;
    }

    /** Softmax probabilities in double precision, like the toolkit's predict. */
    public static double[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double[] out = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            out[i] = Math.exp(logits[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < out.length; i++) {
            out[i] /= sum;
        }
        return out;
    }

    /** One ranked class. */
    public static final class Label {
        public final int index;
        public final String name;
        public final double score;

        Label(int index, String name, double score) {
            this.index = index;
            this.name = name;
            this.score = score;
        }
    }

    /** The top-k labels with softmax scores. */
    public static List<Label> labels(float[] logits, String[] names, int k) {
        double[] p = softmax(logits);
        List<Label> out = new ArrayList<>();
        for (int i : indices(logits, k)) {
            out.add(new Label(i, i < names.length ? names[i] : String.valueOf(i), p[i]));
        }
        return out;
    }
}
