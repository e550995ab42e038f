package org.mnv1tk.core;

/**
 * int8 quantization of one tensor, real = scale * (q - zeroPoint), with the toolkit's arithmetic:
 * quantize is float32 x / scale, rounded half to even, plus the zero point, saturated to [-128, 127]
 * (numpy's {@code clip(round(x / scale) + zp)} in {@code Predictor.to_native}); dequantize is
 * float32 (q - zeroPoint) * scale, as the LiteRT predictor does.
 */
public final class QuantParams {
    public final float scale;
    public final int zeroPoint;

    public QuantParams(float scale, int zeroPoint) {
        if (!(scale > 0f) || Float.isInfinite(scale)) {
            throw new IllegalArgumentException("quantization scale must be positive and finite, got " + scale);
        }
        this.scale = scale;
        this.zeroPoint = zeroPoint;
    }

    public byte quantize(float x) {
        float q = (float) Math.rint(x / scale) + zeroPoint;
        return (byte) Math.max(-128f, Math.min(127f, q));
    }

    public byte[] quantize(float[] x) {
        byte[] out = new byte[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = quantize(x[i]);
        }
        return out;
    }

    public float dequantize(byte q) {
        return (float) (q - zeroPoint) * scale;
    }

    public float[] dequantize(byte[] q) {
        float[] out = new float[q.length];
        for (int i = 0; i < q.length; i++) {
            out[i] = dequantize(q[i]);
        }
        return out;
    }

    static QuantParams fromJson(JsonFields json) {
        return new QuantParams((float) json.number("scale"), json.integer("zero_point"));
    }
}
