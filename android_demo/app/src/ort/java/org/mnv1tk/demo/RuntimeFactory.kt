package org.mnv1tk.demo

import ai.onnxruntime.OnnxJavaType
import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtException
import ai.onnxruntime.OrtSession
import android.content.Context
import java.nio.ByteBuffer
import java.nio.FloatBuffer
import org.mnv1tk.core.Classifier
import org.mnv1tk.core.InputSpec
import org.mnv1tk.core.ModelEntry
import org.mnv1tk.core.ModelInput

/**
 * ort flavor: ONNX Runtime Android. "npu" is the QNN execution provider on the Hexagon HTP (Snapdragon), for QDQ
 * models and for the EPContext models `mnv1-tk convert --to qnn` compiles for one SoC; "cpu" is ORT's CPU provider.
 */
object RuntimeFactory {
    fun open(context: Context, bundle: AssetBundle, entry: ModelEntry, accelerator: String, threads: Int): Classifier {
        val env = OrtEnvironment.getEnvironment()
        val model = bundle.read(entry.file)
        var notice: String? = null
        if (accelerator == "npu") {
            try {
                val options = OrtSession.SessionOptions().apply {
                    addQnn(mapOf("backend_path" to "libQnnHtp.so", "htp_performance_mode" to "burst"))
                    addConfigEntry("session.disable_cpu_ep_fallback", "1") // all on the HTP, or a visible failure
                }
                return OrtClassifier(env, env.createSession(model, options), entry, "npu", null)
            } catch (e: OrtException) {
                notice = "QNN HTP could not take ${entry.file}: ${e.message}"
            }
        } else if (accelerator == "gpu") {
            notice = "this flavor has no GPU provider"
        }
        val options = OrtSession.SessionOptions().apply { setIntraOpNumThreads(threads) }
        return OrtClassifier(env, env.createSession(model, options), entry, "cpu", notice)
    }
}

private class OrtClassifier(
    private val env: OrtEnvironment,
    private val session: OrtSession,
    private val entry: ModelEntry,
    private val accelerator: String,
    private val notice: String?,
) : Classifier {
    private val inputName = session.inputNames.first()
    private val shape: LongArray = entry.input.imageSize.toLong().let { s ->
        if (entry.input.layout == InputSpec.Layout.NCHW) longArrayOf(1, 3, s, s) else longArrayOf(1, s, s, 3)
    }

    override fun run(input: ModelInput): FloatArray {
        val tensor = if (input.isInt8) {
            OnnxTensor.createTensor(env, ByteBuffer.wrap(input.int8()), shape, OnnxJavaType.INT8)
        } else {
            OnnxTensor.createTensor(env, FloatBuffer.wrap(input.floats()), shape)
        }
        return tensor.use {
            session.run(mapOf(inputName to it)).use { result ->
                val output = result.get(0) as OnnxTensor
                val quant = entry.outputQuant
                if (quant == null) {
                    FloatArray(entry.numClasses).also { logits -> output.floatBuffer.get(logits) }
                } else {
                    quant.dequantize(ByteArray(entry.numClasses).also { q -> output.byteBuffer.get(q) })
                }
            }
        }
    }

    override fun acceleratorUsed(): String = accelerator

    override fun fallbackNotice(): String? = notice

    override fun close() = session.close()
}
