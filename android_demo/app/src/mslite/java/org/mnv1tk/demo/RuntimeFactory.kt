package org.mnv1tk.demo

import android.content.Context
import com.mindspore.Model
import com.mindspore.config.CpuBindMode
import com.mindspore.config.DeviceType
import com.mindspore.config.MSContext
import com.mindspore.config.ModelType
import java.io.File
import org.mnv1tk.core.Classifier
import org.mnv1tk.core.ModelEntry
import org.mnv1tk.core.ModelInput

/**
 * mslite flavor: MindSpore Lite (the AAR in app/libs). "npu" puts the Kirin NPU (HiAI) first with the CPU after it,
 * so MindSpore Lite runs what the NPU lacks on the CPU; a build that fails on the NPU falls back to the CPU alone.
 */
object RuntimeFactory {
    private const val KIRIN_NPU_HIGH_PERFORMANCE = 3

    fun open(context: Context, bundle: AssetBundle, entry: ModelEntry, accelerator: String, threads: Int): Classifier {
        val path = modelFile(context, bundle, entry)
        var notice: String? = null
        if (accelerator != "cpu") {
            build(path, accelerator, threads)?.let { return MsLiteClassifier(it, entry, "$accelerator+cpu", null) }
            notice = "MindSpore Lite could not build ${entry.file} for the ${accelerator.uppercase()}"
        }
        val model = build(path, "cpu", threads) ?: error("MindSpore Lite could not build ${entry.file} on the CPU")
        return MsLiteClassifier(model, entry, "cpu", notice)
    }

    private fun build(path: String, accelerator: String, threads: Int): Model? {
        val context = MSContext()
        context.init(threads, CpuBindMode.HIGHER_CPU)
        when (accelerator) {
            "npu" -> context.addDeviceInfo(DeviceType.DT_NPU, false, KIRIN_NPU_HIGH_PERFORMANCE)
            "gpu" -> context.addDeviceInfo(DeviceType.DT_GPU, false)
        }
        context.addDeviceInfo(DeviceType.DT_CPU, false)
        val model = Model()
        if (model.build(path, ModelType.MT_MINDIR, context)) {
            return model
        }
        model.free()
        return null
    }

    /** MindSpore Lite builds from a file path: the asset is copied to the app's files once. */
    private fun modelFile(context: Context, bundle: AssetBundle, entry: ModelEntry): String {
        val file = File(context.filesDir, entry.file)
        if (!file.exists()) {
            val part = File(context.filesDir, entry.file + ".part")
            part.writeBytes(bundle.read(entry.file))
            part.renameTo(file)
        }
        return file.absolutePath
    }
}

private class MsLiteClassifier(
    private val model: Model,
    private val entry: ModelEntry,
    private val accelerator: String,
    private val notice: String?,
) : Classifier {
    override fun run(input: ModelInput): FloatArray {
        model.inputs[0].setData(input.toDirectBuffer())
        check(model.predict()) { "MindSpore Lite predict failed" }
        val output = model.outputs[0]
        val quant = entry.outputQuant
        return if (quant == null) output.floatData else quant.dequantize(output.byteData)
    }

    override fun acceleratorUsed(): String = accelerator

    override fun fallbackNotice(): String? = notice

    override fun close() = model.free()
}
