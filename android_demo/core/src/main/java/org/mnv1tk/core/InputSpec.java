package org.mnv1tk.core;

/** What a model takes: the eval transform (size, crop_pct, mean/std on the 0..255 scale), layout and input quantization. */
public final class InputSpec {
    public enum Layout { NCHW, NHWC }

    public final int imageSize;
    public final float cropPct;
    public final float[] mean;
    public final float[] std;
    public final Layout layout;
    /** Null for a float32 input. */
    public final QuantParams inputQuant;

    public InputSpec(int imageSize, float cropPct, float[] mean, float[] std, Layout layout, QuantParams inputQuant) {
        if (imageSize < 1 || !(cropPct > 0f) || mean.length != 3 || std.length != 3) {
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
        return (int) (imageSize / (double) cropPct);
    }

    public int elementCount() {
        return 3 * imageSize * imageSize;
    }
}
