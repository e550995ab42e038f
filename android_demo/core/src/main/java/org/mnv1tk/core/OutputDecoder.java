package org.mnv1tk.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Model output bytes -> float32 logits: float32 read as is, int8 dequantized with the output quantization. */
public final class OutputDecoder {
    private final QuantParams outputQuant;
    private final int numClasses;

    public OutputDecoder(ModelEntry entry) {
        this.outputQuant = entry.outputQuant;
        this.numClasses = entry.numClasses;
    }

    public int byteSize() {
        return outputQuant == null ? 4 * numClasses : numClasses;
    }

    public float[] decode(ByteBuffer output) {
        ByteBuffer buffer = output.duplicate().order(ByteOrder.nativeOrder());
        buffer.rewind();
        float[] logits = new float[numClasses];
        for (int i = 0; i < numClasses; i++) {
            logits[i] = outputQuant == null ? buffer.getFloat() : outputQuant.dequantize(buffer.get());
        }
        return logits;
    }
}
