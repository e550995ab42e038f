package org.mnv1tk.demo

import android.Manifest
import android.content.Intent
import android.content.pm.PackageManager
import android.os.Bundle
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.Spinner
import android.widget.TextView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import org.mnv1tk.core.ModelEntry
import org.mnv1tk.core.RgbaFrame
import org.mnv1tk.core.TopK

/** Live camera classification with a model, accelerator and thread count picked on screen. */
class MainActivity : AppCompatActivity() {
    private lateinit var bundle: AssetBundle
    private lateinit var modelPicker: Spinner
    private lateinit var acceleratorPicker: Spinner
    private lateinit var threadsPicker: Spinner
    private lateinit var top3View: TextView
    private lateinit var statsView: TextView
    private lateinit var ranOnView: TextView
    private lateinit var noticeView: TextView
    private val analysisExecutor: ExecutorService = Executors.newSingleThreadExecutor()

    @Volatile private var session: ClassifierSession? = null

    private val cameraPermission =
        registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
            if (granted) startCamera() else noticeView.setText(R.string.camera_permission_needed)
        }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        modelPicker = findViewById(R.id.model_picker)
        acceleratorPicker = findViewById(R.id.accelerator_picker)
        threadsPicker = findViewById(R.id.threads_picker)
        top3View = findViewById(R.id.top3)
        statsView = findViewById(R.id.stats)
        ranOnView = findViewById(R.id.ran_on)
        noticeView = findViewById(R.id.notice)
        bundle = AssetBundle(assets)

        if (bundle.models.isEmpty()) {
            noticeView.setText(R.string.no_models)
            return
        }
        modelPicker.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item,
            bundle.models.map(ModelEntry::displayName))
        val reload = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = reloadModel()
            override fun onNothingSelected(parent: AdapterView<*>?) = Unit
        }
        modelPicker.onItemSelectedListener = reload
        acceleratorPicker.onItemSelectedListener = reload
        threadsPicker.onItemSelectedListener = reload
        findViewById<Button>(R.id.self_check_button).setOnClickListener {
            startActivity(Intent(this, SelfCheckActivity::class.java)
                .putExtra(SelfCheckActivity.EXTRA_MODEL, selectedModel().id)
                .putExtra(SelfCheckActivity.EXTRA_ACCELERATOR, selectedAccelerator())
                .putExtra(SelfCheckActivity.EXTRA_THREADS, selectedThreads()))
        }

        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            cameraPermission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun selectedModel(): ModelEntry = bundle.models[modelPicker.selectedItemPosition]
    private fun selectedAccelerator(): String = acceleratorPicker.selectedItem as String
    private fun selectedThreads(): Int = (threadsPicker.selectedItem as String).toInt()

    /** Opens the picked model on the analysis thread, so no frame sees a half-closed session. */
    private fun reloadModel() {
        val model = selectedModel()
        val accelerator = selectedAccelerator()
        val threads = selectedThreads()
        analysisExecutor.execute {
            session?.close()
            session = null
            val opened = runCatching { ClassifierSession(this, bundle, model, accelerator, threads) }
            runOnUiThread {
                opened.onSuccess { s ->
                    session = s
                    ranOnView.text = getString(R.string.ran_on_format, "${s.acceleratorUsed} · ${s.entry.file}")
                    noticeView.text = s.fallbackNotice?.let { getString(R.string.fallback_format, it) } ?: ""
                }.onFailure { noticeView.text = "${model.file}: ${it.message}" }
            }
        }
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            val provider = providerFuture.get()
            val preview = Preview.Builder().build().also {
                it.setSurfaceProvider(findViewById<PreviewView>(R.id.preview).surfaceProvider)
            }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(analysisExecutor, ::analyze)
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        image.use {
            val current = session ?: return
            val plane = it.planes[0]
            val bytes = ByteArray(plane.buffer.remaining()).also { b -> plane.buffer.get(b) }
            val frame = RgbaFrame.upright(bytes, it.width, it.height, plane.rowStride, it.imageInfo.rotationDegrees)
            val top3 = runCatching { current.classify(frame) }
            runOnUiThread {
                top3.onSuccess { labels -> showResult(current, labels) }
                    .onFailure { e -> noticeView.text = "inference failed: ${e.message}" }
            }
        }
    }

    private fun showResult(current: ClassifierSession, labels: List<TopK.Label>) {
        top3View.text = labels.joinToString("\n") { String.format(Locale.ROOT, "%-16s %5.1f%%", it.name, it.score * 100) }
        statsView.text = getString(R.string.stats_format, current.stats.meanMs(), current.stats.fps(), current.stats.count())
        ranOnView.text = getString(R.string.ran_on_format, "${current.acceleratorUsed} · ${current.entry.file}")
    }

    override fun onDestroy() {
        analysisExecutor.execute { session?.close() }
        analysisExecutor.shutdown()
        super.onDestroy()
    }
}
