package org.mnv1tk.core;

/** One loaded model on one accelerator; each app flavor implements it over its runtime. */
public interface Classifier extends AutoCloseable {
    /** Runs one input; returns float32 logits (int8 outputs dequantized with {@link OutputDecoder}). */
    float[] run(ModelInput input) throws Exception;

    /** The accelerator that actually runs the model ("cpu", "gpu", "npu"), after any fallback. */
    String acceleratorUsed();

    /** Why the requested accelerator was not used, or null. */
    String fallbackNotice();

    @Override
    void close();
}
