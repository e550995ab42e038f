plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.mnv1tk.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.mnv1tk.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
    }

    // One flavor per runtime; each supplies org.mnv1tk.demo.RuntimeFactory.
    flavorDimensions += "runtime"
    productFlavors {
        create("litert") {
            dimension = "runtime"
            applicationIdSuffix = ".litert"
            buildConfigField("String", "RUNTIME", "\"litert\"")
        }
        create("mslite") {
            dimension = "runtime"
            applicationIdSuffix = ".mslite"
            buildConfigField("String", "RUNTIME", "\"mslite\"")
        }
        create("ort") {
            dimension = "runtime"
            applicationIdSuffix = ".ort"
            buildConfigField("String", "RUNTIME", "\"ort\"")
        }
    }

    buildFeatures {
        buildConfig = true
    }

    androidResources {
        noCompress += listOf("tflite", "ms", "onnx", "f32", "i8", "rgba") // models are memory-mapped from the APK
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

dependencies {
    implementation(project(":core"))
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.androidx.lifecycle.runtime.ktx)
    implementation(libs.kotlinx.coroutines.android)
    implementation(libs.camerax.core)
    implementation(libs.camerax.camera2)
    implementation(libs.camerax.lifecycle)
    implementation(libs.camerax.view)

    "litertImplementation"(libs.litert)
    "litertImplementation"(libs.litert.gpu)
    "msliteImplementation"(fileTree(mapOf("dir" to "libs", "include" to listOf("*.aar"))))
    "ortImplementation"(libs.onnxruntime.android.qnn)

    androidTestImplementation(libs.androidx.test.runner)
    androidTestImplementation(libs.androidx.test.ext.junit)
    androidTestImplementation(libs.junit)
}
