package org.mnv1tk.demo

import android.content.Context
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.BuiltinNpuAcceleratorProvider
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.Environment
import com.google.ai.edge.litert.LiteRtException
import com.google.ai.edge.litert.TensorBuffer
import org.mnv1tk.core.Classifier
import org.mnv1tk.core.ModelEntry
import org.mnv1tk.core.ModelInput

/** litert flavor: LiteRT's CompiledModel API on the CPU (XNNPACK, 1-4 threads), GPU or NPU. */
object RuntimeFactory {
    fun open(context: Context, bundle: AssetBundle, entry: ModelEntry, accelerator: String, threads: Int): Classifier {
        val wanted = when (accelerator) {
            "gpu" -> Accelerator.GPU
            "npu" -> Accelerator.NPU
            else -> Accelerator.CPU
        }
        var notice: String? = null
        if (wanted != Accelerator.CPU) {
            try {
                return LiteRtClassifier(compile(context, entry, wanted, threads), entry, accelerator, null)
            } catch (e: LiteRtException) {
                notice = "${accelerator.uppercase()} could not compile ${entry.file}: ${e.message}"
            }
        }
        return LiteRtClassifier(compile(context, entry, Accelerator.CPU, threads), entry, "cpu", notice)
    }

    /**
     * Compiles for exactly one accelerator, so a failure is visible instead of a silent partial CPU run. The NPU
     * takes the file compiled ahead of time for this SoC when the bundle has one (ModelIndex.resolve picked it),
     * otherwise LiteRT compiles the int8 model on the device.
     */
    private fun compile(context: Context, entry: ModelEntry, accelerator: Accelerator, threads: Int): CompiledModel {
        val options = CompiledModel.Options(accelerator)
        if (accelerator == Accelerator.CPU) {
            options.cpuOptions = CompiledModel.CpuOptions(numThreads = threads)
        }
        val env = if (accelerator == Accelerator.NPU) Environment.create(BuiltinNpuAcceleratorProvider(context)) else null
        return CompiledModel.create(context.assets, entry.file, options, env)
    }
}

private class LiteRtClassifier(
    private val model: CompiledModel,
    private val entry: ModelEntry,
    private val accelerator: String,
    private val notice: String?,
) : Classifier {
    private val inputs: List<TensorBuffer> = model.createInputBuffers()
    private val outputs: List<TensorBuffer> = model.createOutputBuffers()

    override fun run(input: ModelInput): FloatArray {
        if (input.isInt8) inputs[0].writeInt8(input.int8()) else inputs[0].writeFloat(input.floats())
        model.run(inputs, outputs)
        val quant = entry.outputQuant
        return if (quant == null) outputs[0].readFloat() else quant.dequantize(outputs[0].readInt8())
    }

    override fun acceleratorUsed(): String = accelerator

    override fun fallbackNotice(): String? = notice

    override fun close() {
        inputs.forEach { it.close() }
        outputs.forEach { it.close() }
        model.close()
    }
}
