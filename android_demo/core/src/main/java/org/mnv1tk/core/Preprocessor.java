package org.mnv1tk.core;

/**
 * Camera RGBA -> model input, exactly the toolkit's eval transform ({@code toolkit/preprocess.py}):
 * resize the shorter side to int(size / crop_pct) with OpenCV's INTER_LINEAR (bit for bit, see
 * {@link #resizeLinear}), centre crop (zero padding when smaller), (pixel - mean) / std in float32,
 * then the model's layout, and int8 quantization for int8-input models.
 */
public final class Preprocessor {
    private static final int CN = 3;
    private static final int COEF_SCALE = 2048; // OpenCV's INTER_RESIZE_COEF_SCALE (11 fractional bits)

    private final InputSpec spec;

    public Preprocessor(InputSpec spec) {
        this.spec = spec;
    }

    public InputSpec spec() {
        return spec;
    }

    /** Tightly packed RGBA [height, width, 4] -> float32 input in the model's layout (before quantization). */
    public float[] toFloatTensor(byte[] rgba, int width, int height) {
        byte[] rgb = dropAlpha(rgba, width, height);
        int[] resized = resizedShape(width, height, spec.resizeSize());
        byte[] scaled = resizeLinear(rgb, width, height, resized[0], resized[1]);
        byte[] cropped = centerCrop(scaled, resized[0], resized[1], spec.imageSize);
        return normalize(cropped);
    }

    /** The int8 input of an int8-input model (toFloatTensor, then the input quantization). */
    public byte[] toInt8Tensor(byte[] rgba, int width, int height) {
        if (spec.inputQuant == null) {
            throw new IllegalStateException("the model takes float32 input");
        }
        return spec.inputQuant.quantize(toFloatTensor(rgba, width, height));
    }

    static byte[] dropAlpha(byte[] rgba, int width, int height) {
        if (rgba.length < width * height * 4) {
            throw new IllegalArgumentException("RGBA buffer holds " + rgba.length + " bytes for " + width + "x" + height);
        }
        byte[] rgb = new byte[width * height * CN];
        for (int p = 0, q = 0; p < width * height; p++) {
            rgb[q++] = rgba[4 * p];
            rgb[q++] = rgba[4 * p + 1];
            rgb[q++] = rgba[4 * p + 2];
        }
        return rgb;
    }

    /**
     * {width, height} with the shorter side at {@code shorter}: the longer side is
     * floor(float32(long) / short * shorter), MindSpore 2.x's ResizeOp rule.
     */
    static int[] resizedShape(int width, int height, int shorter) {
        boolean heightShorter = height < width;
        int shortSide = heightShorter ? height : width;
        int longSide = heightShorter ? width : height;
        float scaled = (float) longSide / (float) shortSide * (float) shorter;
        int outLong = (int) Math.floor(scaled);
        return heightShorter ? new int[] {outLong, shorter} : new int[] {shorter, outLong};
    }

    /**
     * OpenCV 4.x {@code cv::resize(INTER_LINEAR)} on 8-bit 3-channel images, bit for bit: float32
     * source coordinates, weights rounded to 11 bits, an exact horizontal pass, and the vertical pass of
     * OpenCV's SIMD kernel (((row0 >> 4) * b0 >> 16) + ((row1 >> 4) * b1 >> 16) + 2) >> 2. An exact
     * halving in both directions is OpenCV's 2x2 area average instead; equal sizes are a copy.
     */
    static byte[] resizeLinear(byte[] src, int sw, int sh, int dw, int dh) {
        if (sw == dw && sh == dh) {
            return src.clone();
        }
        double scaleX = 1.0 / ((double) dw / sw);
        double scaleY = 1.0 / ((double) dh / sh);
        if (Math.abs(scaleX - 2.0) < Math.ulp(1.0) && Math.abs(scaleY - 2.0) < Math.ulp(1.0)) {
            return halve(src, sw, dw, dh);
        }
        int[] xofs = new int[dw];
        int[] alpha = new int[2 * dw];
        int xmax = dw;
        for (int dx = 0; dx < dw; dx++) {
            float fx = (float) ((dx + 0.5) * scaleX - 0.5);
            int sx = (int) Math.floor(fx);
            fx -= sx;
            if (sx < 0) {
                fx = 0f;
                sx = 0;
            }
            if (sx + 1 >= sw) {
                xmax = Math.min(xmax, dx);
                if (sx >= sw - 1) {
                    fx = 0f;
                    sx = sw - 1;
                }
            }
            xofs[dx] = sx;
            alpha[2 * dx] = (int) Math.rint((1f - fx) * COEF_SCALE);
            alpha[2 * dx + 1] = (int) Math.rint(fx * COEF_SCALE);
        }
        byte[] dst = new byte[dw * dh * CN];
        int[] row0 = new int[dw * CN];
        int[] row1 = new int[dw * CN];
        for (int dy = 0; dy < dh; dy++) {
            float fy = (float) ((dy + 0.5) * scaleY - 0.5);
            int sy = (int) Math.floor(fy);
            fy -= sy;
            int b0 = (int) Math.rint((1f - fy) * COEF_SCALE);
            int b1 = (int) Math.rint(fy * COEF_SCALE);
            horizontal(src, sw, clamp(sy, sh), xofs, alpha, xmax, row0);
            horizontal(src, sw, clamp(sy + 1, sh), xofs, alpha, xmax, row1);
            int base = dy * dw * CN;
            for (int i = 0; i < row0.length; i++) {
                int v = ((((row0[i] >> 4) * b0) >> 16) + (((row1[i] >> 4) * b1) >> 16) + 2) >> 2;
                dst[base + i] = (byte) Math.max(0, Math.min(255, v));
            }
        }
        return dst;
    }

    private static int clamp(int row, int rows) {
        return Math.max(0, Math.min(rows - 1, row));
    }

    private static void horizontal(byte[] src, int sw, int row, int[] xofs, int[] alpha, int xmax, int[] out) {
        int base = row * sw * CN;
        for (int dx = 0; dx < xofs.length; dx++) {
            int s = base + xofs[dx] * CN;
            for (int c = 0; c < CN; c++) {
                int p0 = src[s + c] & 0xff;
                out[dx * CN + c] = dx < xmax ? p0 * alpha[2 * dx] + (src[s + CN + c] & 0xff) * alpha[2 * dx + 1]
                        : p0 * COEF_SCALE;
            }
        }
    }

    private static byte[] halve(byte[] src, int sw, int dw, int dh) {
        byte[] dst = new byte[dw * dh * CN];
        for (int y = 0; y < dh; y++) {
            for (int x = 0; x < dw; x++) {
                int top = ((2 * y) * sw + 2 * x) * CN;
                int bottom = top + sw * CN;
                for (int c = 0; c < CN; c++) {
                    int sum = (src[top + c] & 0xff) + (src[top + CN + c] & 0xff) + (src[bottom + c] & 0xff)
                            + (src[bottom + CN + c] & 0xff);
                    dst[(y * dw + x) * CN + c] = (byte) ((sum + 2) >> 2);
                }
            }
        }
        return dst;
    }

    /** MindSpore's CenterCropOp: offset (dim - size) / 2; a smaller image is zero-padded, the odd pixel top / left. */
    static byte[] centerCrop(byte[] rgb, int width, int height, int size) {
        int padH = Math.max(size - height, 0);
        int padW = Math.max(size - width, 0);
        int top = padH - padH / 2;
        int left = padW - padW / 2;
        int paddedH = height + padH;
        int paddedW = width + padW;
        int offY = (paddedH - size) / 2;
        int offX = (paddedW - size) / 2;
        byte[] out = new byte[size * size * CN];
        for (int y = 0; y < size; y++) {
            int sy = y + offY - top;
            if (sy < 0 || sy >= height) {
                continue;
            }
            for (int x = 0; x < size; x++) {
                int sx = x + offX - left;
                if (sx >= 0 && sx < width) {
                    System.arraycopy(rgb, (sy * width + sx) * CN, out, (y * size + x) * CN, CN);
                }
            }
        }
        return out;
    }

    /** uint8 HWC -> float32 (pixel - mean) / std, in the model's layout. */
    float[] normalize(byte[] rgb) {
        int s = spec.imageSize;
        float[] out = new float[spec.elementCount()];
        for (int p = 0; p < s * s; p++) {
            for (int c = 0; c < CN; c++) {
                float v = ((float) (rgb[p * CN + c] & 0xff) - spec.mean[c]) / spec.std[c];
                out[spec.layout == InputSpec.Layout.NHWC ? p * CN + c : c * s * s + p] = v;
            }
        }
        return out;
    }
}
