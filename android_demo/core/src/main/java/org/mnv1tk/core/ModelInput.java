package org.mnv1tk.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** A model input: float32 or int8 values in the model's layout. */
public final class ModelInput {
    private final float[] floats;
    private final byte[] int8;

    private ModelInput(float[] floats, byte[] int8) {
        this.floats = floats;
        this.int8 = int8;
    }

    public static ModelInput ofFloats(float[] values) {
        return new ModelInput(values, null);
    }

    public static ModelInput ofInt8(byte[] values) {
        return new ModelInput(null, values);
    }

    /** The input a model with {@code spec} takes for this float tensor (quantized when the input is int8). */
    public static ModelInput forSpec(InputSpec spec, float[] tensor) {
        return spec.inputQuant == null ? ofFloats(tensor) : ofInt8(spec.inputQuant.quantize(tensor));
    }

    public boolean isInt8() {
        return int8 != null;
    }

    public float[] floats() {
        if (floats == null) {
            throw new IllegalStateException("int8 input");
        }
        return floats;
    }

    public byte[] int8() {
        if (int8 == null) {
            throw new IllegalStateException("float32 input");
        }
        return int8;
    }

    /** A direct buffer in native byte order, as the runtimes' tensor APIs take it. */
    public ByteBuffer toDirectBuffer() {
        if (int8 != null) {
            ByteBuffer buffer = ByteBuffer.allocateDirect(int8.length).order(ByteOrder.nativeOrder());
            buffer.put(int8).rewind();
            return buffer;
        }
        ByteBuffer buffer = ByteBuffer.allocateDirect(floats.length * 4).order(ByteOrder.nativeOrder());
        buffer.asFloatBuffer().put(floats);
        return buffer;
    }
}
