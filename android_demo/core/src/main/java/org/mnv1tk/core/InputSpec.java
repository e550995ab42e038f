package org.mnv1tk.core;

/** What a model takes: the eval transform (size, crop_pct, mean/std on the 0..255 scale), layout and input quantization. */
public final class InputSpec {
    public enum Layout { NCHW, NHWC }

    public final int imageSize;
    public final double cropPct; // double, as Python divides by it: int(224 / 0.8) is 280, with a float 0.8 it would be 279
    public final float[] mean;
    public final float[] std;
    public final Layout layout;
    /** Null for a float32 input. */
    public final QuantParams inputQuant;

    public InputSpec(int imageSize, double cropPct, float[] mean, float[] std, Layout layout, QuantParams inputQuant) {
        if (imageSize < 1 || !(cropPct > 0) || mean.length != 3 || std.length != 3) {
            throw new IllegalArgumentException("bad input spec: size " + imageSize + ", crop_pct " + cropPct);
        }
        this.imageSize = imageSize;
        this.cropPct = cropPct;
        this.mean = mean.clone();
        this.std = std.clone();
        this.layout = layout;
        this.inputQuant = inputQuant;
    }

    /** The shorter side before the centre crop: int(size / crop_pct), as mindcv computes it. */
    public int resizeSize() {
        return (int) (imageSize / cropPct);
    }

    public int elementCount() {
        return 3 * imageSize * imageSize;
    }
}
